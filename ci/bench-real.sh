#!/usr/bin/env bash
# Benchmark of the real job (issue 14): the shipped recipes/worker.yaml on a realistic base,
# every output format, cold and warm cache, 1/8/32 nodes, with peak RSS. Not run by CI; run by
# hand: `bash ci/bench-real.sh` (prints a table and the ratios against the issue's targets).
#
# 1. Builds (once per BENCH_SIZE) a Raspberry-Pi-OS-Lite-shaped base from the raspios-trixie
#    test fixture (its MBR, FAT32 bootfs and ext4 rootfs, so the recipe finds every file it
#    edits): the rootfs partition is grown with resize2fs to fill BENCH_SIZE and filled, through
#    debugfs, with a real-looking mix: copies of this machine's binaries and libraries
#    (compressible, like /usr), random blobs (incompressible, like firmware and .gz/.xz
#    packages), the rest free space; bootfs gets a random 30 MiB "kernel". Then `xz -T0`.
# 2. Times, in one run:
#    floors   one `xz -dc -T0` + one `zstd -T0 -3` of one raw image; one `xz -T0 -6` of it;
#    naive    the rootless per-node shell pipeline: `xz -dc`, debugfs writes (hostname, hosts,
#             an authorized key, a unit), mtools edits of cmdline.txt and config.txt, `zstd`;
#    piimage  `piimage build` of recipes/worker.yaml (through a recipe that extends it and only
#             sets output.formats) for each of BENCH_FORMATS with bmap, 8 nodes, cold (empty
#             cache dir: the .img.xz is decoded) and warm (the same cache dir again);
#             the shipped recipe as it is (img.xz + bmap) cold and warm;
#             the scaling over BENCH_SCALING nodes (img.zst, warm).
#
# Environment:
#   BENCH_DIR      work directory (default /tmp/piimage-real)
#   BENCH_SIZE     raw base size, as truncate(1) takes it (default 1G; the official Lite image
#                  is about 3G: BENCH_SIZE=3G needs about 3G + 8 compressed images + (for 32
#                  nodes) 32 compressed .img.zst free, plus the decoded base in the cache)
#   BENCH_NODES    nodes of the per-format runs (default 8)
#   BENCH_SCALING  node counts of the scaling runs (default "1 8 32")
#   BENCH_FORMATS  formats of the per-format runs (default "img img.zst img.xz img.gz")
#   BENCH_KEEP=1   keep the base between runs (default: kept; `rm -rf $BENCH_DIR` to clean)
# Outputs of each run are deleted right after it is timed.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)
export PATH="/usr/sbin:/sbin:$PATH"
WORK=${BENCH_DIR:-/tmp/piimage-real}
SIZE=${BENCH_SIZE:-1G}
NODES=${BENCH_NODES:-8}
SCALING=${BENCH_SCALING:-"1 8 32"}
FORMATS=${BENCH_FORMATS:-"img img.zst img.xz img.gz"}

cargo build --quiet --release --locked --bin piimage
PIIMAGE="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/release/piimage"
FIXTURE="$REPO/target/fixtures/raspios-trixie.img"
[ -f "$FIXTURE" ] || cargo run --quiet --locked -p xtask -- fixtures >/dev/null
mkdir -p "$WORK"
cd "$WORK"

# The fixture's layout (tests/fixtures/INDEX.md): p2 starts at sector 1064960.
P2=1064960
build_base() {
  echo "== building a $SIZE base from $FIXTURE (once)" >&2
  rm -f base.img base.img.xz root.ext4 fill.bin
  local bytes root_bytes
  bytes=$(numfmt --from=iec "$SIZE")
  root_bytes=$((bytes - P2 * 512))
  [ "$root_bytes" -gt $((256 << 20)) ] || { echo "BENCH_SIZE too small" >&2; exit 1; }
  dd if="$FIXTURE" of=root.ext4 bs=1M iflag=skip_bytes,count_bytes skip=$((P2 * 512)) \
    status=none conv=sparse
  truncate -s "$root_bytes" root.ext4
  e2fsck -fy root.ext4 >/dev/null
  resize2fs -f root.ext4 >/dev/null 2>&1
  # Fill the rootfs: ~12 % incompressible, ~40 % binaries, the rest free (the official Lite
  # image's rootfs is about 2/3 used after first boot's resize; its .img.xz is about 15 % of
  # the raw size). bootfs is 512 MiB, mostly empty, as in the official image.
  local unit=$((16 << 20)) n_rand n_bin i
  n_rand=$((root_bytes * 12 / 100 / unit))
  n_bin=$((root_bytes * 40 / 100 / unit))
  local cmds=cmds.txt
  printf 'mkdir /var/lib/bench\n' >"$cmds"
  find /usr/lib /usr/bin /usr/libexec -type f -size +16k 2>/dev/null | sort | head -n 20000 \
    | xargs cat 2>/dev/null | head -c $((n_bin * unit)) >bins.bin || true
  for i in $(seq 1 "$n_bin"); do
    dd if=bins.bin of="bin$i" bs=1M iflag=skip_bytes,count_bytes skip=$(((i - 1) * unit)) \
      count=$unit status=none
    printf 'write bin%s /var/lib/bench/lib%s.so\n' "$i" "$i" >>"$cmds"
  done
  for i in $(seq 1 "$n_rand"); do
    head -c $unit /dev/urandom >"rand$i"
    printf 'write rand%s /var/lib/bench/blob%s.xz\n' "$i" "$i" >>"$cmds"
  done
  debugfs -w -f "$cmds" root.ext4 >/dev/null 2>&1
  rm -f bins.bin bin[0-9]* rand[0-9]* "$cmds"
  e2fsck -fn root.ext4 >/dev/null
  # The recipe must still fit: at least 64 MiB free.
  [ "$(dumpe2fs -h root.ext4 2>/dev/null | awk -F: '/^Free blocks/ {print $2 * 4096}')" -gt $((64 << 20)) ] \
    || { echo "the base's rootfs is full" >&2; exit 1; }
  dd if="$FIXTURE" of=base.img bs=512 count=$P2 status=none
  dd if=root.ext4 of=base.img bs=1M seek=$((P2 * 512)) oflag=seek_bytes conv=sparse,notrunc \
    status=none
  truncate -s "$bytes" base.img
  rm -f root.ext4
  echo ", +" | sfdisk -q -N 2 --no-reread base.img
  head -c 30M /dev/urandom >kernel_bench.img
  MTOOLS_SKIP_CHECK=1 mcopy -o -i "base.img@@$((16384 * 512))" kernel_bench.img ::/
  rm -f kernel_bench.img
  e2fsck -fn "base.img?offset=$((P2 * 512))" >/dev/null
  fsck.fat -n "base.img@$((16384 * 512))" >/dev/null 2>&1 || true
  xz -T0 -6 -f -k base.img
  echo "$SIZE" >base.size
}
[ -f base.img.xz ] && [ "$(cat base.size 2>/dev/null)" = "$SIZE" ] || build_base

# timed LABEL CMD...: runs CMD, prints "seconds peak_rss_kib" on stdout, a line on stderr.
timed() {
  local label=$1
  shift
  sync
  /usr/bin/time -f '%e %M' -o .time "$@" >/dev/null 2>.err || { cat .err >&2; exit 1; }
  local secs rss
  read -r secs rss <.time
  printf '  %-52s %8.2f s  %6d MiB peak RSS\n' "$label" "$secs" $((rss / 1024)) >&2
  echo "$secs $rss"
}
calc() { python3 -c "print(round($1, 2))"; }

raw_bytes=$(stat -c %s base.img)
echo "== base: $raw_bytes bytes raw, $(stat -c %s base.img.xz) bytes .img.xz" >&2
echo "== floors" >&2
read -r f_dec _ < <(timed "xz -dc -T0 base.img.xz > a.img" bash -c 'xz -dc -T0 base.img.xz > a.img')
read -r f_zst _ < <(timed "zstd -T0 -3 a.img" zstd -q -T0 -3 -f a.img -o a.img.zst)
read -r f_xz _ < <(timed "xz -T0 -6 a.img" xz -q -T0 -6 -k -f a.img)
one_zst=$(stat -c %s a.img.zst)
one_xz=$(stat -c %s a.img.xz)
rm -f a.img a.img.zst a.img.xz
floor_zst=$(calc "$f_dec + $f_zst")
floor_xz=$(calc "$f_dec + $f_xz")

echo "== naive: $NODES x (xz -dc, debugfs and mtools edits, zstd -T0 -3)" >&2
cp "$REPO/recipes/keys/admin.pub" key.pub
cat >naive.sh <<EOF
set -euo pipefail
for i in \$(seq -w 1 $NODES); do
  xz -dc -T0 base.img.xz > node.img
  echo "worker-\$i" > hostname
  printf '127.0.1.1 worker-%s\n10.42.0.1 gw\n' "\$i" > hosts
  printf '[Unit]\nDescription=k3s install\n[Service]\nExecStart=/usr/local/sbin/k3s-install\n' > k3s.service
  cat > cmds <<CMDS
rm /etc/hostname
write hostname /etc/hostname
rm /etc/hosts
write hosts /etc/hosts
mkdir /home/pi/.ssh
write key.pub /home/pi/.ssh/authorized_keys
write k3s.service /etc/systemd/system/k3s-install.service
symlink /etc/systemd/system/multi-user.target.wants/k3s-install.service /etc/systemd/system/k3s-install.service
CMDS
  debugfs -w -f cmds "node.img?offset=$((P2 * 512))" >/dev/null 2>&1
  MTOOLS_SKIP_CHECK=1 mtype -i "node.img@@$((16384 * 512))" ::/config.txt > config.txt
  MTOOLS_SKIP_CHECK=1 mtype -i "node.img@@$((16384 * 512))" ::/cmdline.txt \\
    | sed 's/\$/ cgroup_enable=cpuset cgroup_memory=1 cgroup_enable=memory/' > cmdline.txt
  printf 'dtoverlay=disable-wifi\n' >> config.txt
  MTOOLS_SKIP_CHECK=1 mcopy -o -i "node.img@@$((16384 * 512))" cmdline.txt config.txt ::/
  zstd -q -T0 -3 -f node.img -o "naive\$i.img.zst"
  rm -f node.img "naive\$i.img.zst"
done
EOF
read -r naive _ < <(timed "naive script, $NODES nodes" bash naive.sh)
rm -f naive.sh cmds hostname hosts k3s.service cmdline.txt config.txt key.pub node.img naive*.img.zst

# recipe NAME FORMAT COUNT: a recipe extending worker.yaml with output.formats [FORMAT, bmap]
# and (COUNT > 8) COUNT workers instead of 8.
recipe() {
  local name=$1 fmt=$2 count=$3
  {
    echo "extends: $REPO/recipes/worker.yaml"
    echo "output: { formats: [$fmt, bmap] }"
    if [ "$count" -gt 8 ]; then
      echo "nodes:"
      echo "  - { name: gw, role: gateway, address: 10.42.0.1, access_address: 192.168.1.50 }"
      echo "  - { range: \"worker-{01..$count}\", role: worker, addresses: 10.42.0.11/24+ }"
    fi
  } >"$name"
}

# build LABEL RECIPE CACHE [ARGS...]: times one `piimage build`, then deletes the outputs;
# appends a line to results.txt.
: >results.txt
build() {
  local label=$1 r=$2 c=$3
  shift 3
  rm -rf out
  local s m
  read -r s m < <(timed "$label" "$PIIMAGE" --quiet --cache-dir "$c" build "$r" \
    --base "$WORK/base.img.xz" --out "$WORK/out" "$@")
  local bytes
  bytes=$(find out -maxdepth 1 -name '*.img*' -printf '%s\n' | sort -n | tail -1)
  rm -rf out
  printf '%-38s %8.2f s  %6d MiB peak RSS  largest image %s B\n' "$label" "$s" $((m / 1024)) \
    "${bytes:-0}" >>results.txt
  echo "$s $m"
}
nodes_args=()
if [ "$NODES" -lt 8 ]; then
  for i in $(seq 1 "$NODES"); do nodes_args+=(--node "$(printf "worker-%02d" "$i")"); done
fi

declare -A cold warm
echo "== piimage build, $NODES nodes, per format (+ bmap), cold then warm" >&2
for f in $FORMATS; do
  recipe "fmt.yaml" "$f" 8
  rm -rf cache
  read -r cold[$f] _ < <(build "$f cold" fmt.yaml cache "${nodes_args[@]}")
  read -r warm[$f] _ < <(build "$f warm" fmt.yaml cache "${nodes_args[@]}")
done

echo "== the shipped recipe as it is (img.xz + bmap), cold then warm rebuild" >&2
rm -rf cache
read -r ship_cold _ < <(build "worker.yaml cold" "$REPO/recipes/worker.yaml" cache)
read -r ship_warm _ < <(build "worker.yaml warm" "$REPO/recipes/worker.yaml" cache)

echo "== scaling, img.zst + bmap, warm" >&2
scaling=""
prev_n=0
prev_s=0
for n in $SCALING; do
  recipe "scale.yaml" img.zst "$n"
  args=()
  if [ "$n" -lt 8 ]; then
    for i in $(seq 1 "$n"); do args+=(--node "$(printf "worker-%02d" "$i")"); done
  fi
  read -r s r < <(build "img.zst warm, $n nodes" scale.yaml cache "${args[@]}")
  extra=""
  if [ "$prev_n" -gt 0 ]; then
    extra=", $(calc "($s - $prev_s) / ($n - $prev_n)") s per extra node"
  fi
  scaling="$scaling  $n nodes: $s s, peak RSS $((r / 1024)) MiB$extra\n"
  prev_n=$n
  prev_s=$s
done
rm -rf cache fmt.yaml scale.yaml .time .err

ratio() { if [ -n "${1:-}" ] && [ -n "${2:-}" ]; then calc "$1 / $2"; else echo "n/a"; fi; }
cat <<EOF

== results ($(nproc) cores, base $raw_bytes bytes raw, $NODES nodes)
floor zstd: xz -dc -T0 + zstd -T0 -3   ${floor_zst} s   (.img.zst $one_zst B)
floor xz:   xz -dc -T0 + xz -T0 -6     ${floor_xz} s   (.img.xz $one_xz B)
naive pipeline, $NODES nodes           ${naive} s
$(cat results.txt)
img.zst cold / zstd floor:    $(ratio "${cold[img.zst]:-}" "$floor_zst")   (target <= 1.0)
naive / img.zst cold:         $(ratio "$naive" "${cold[img.zst]:-}")   (target >= 10)
img.xz cold / xz floor:       $(ratio "${cold[img.xz]:-}" "$floor_xz")   (target <= 1.3)
worker.yaml warm / cold:      $(ratio "$ship_warm" "$ship_cold")   (target <= 0.10)
scaling:
$(printf "%b" "$scaling")
EOF
rm -f results.txt

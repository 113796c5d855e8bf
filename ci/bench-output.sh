#!/usr/bin/env bash
# Benchmark of the output stage (issue 4): N node images from one base for little more than
# the cost of one. Not run by CI; run by hand: `bash ci/bench-output.sh`.
#
# 1. Builds (once) a 2 GiB Raspberry-Pi-OS-shaped base, compressed like the official ones:
#    MBR, FAT32 `bootfs` at 8 MiB (512 MiB, 40 MiB of kernel-like random data), ext4 `rootfs`
#    after it (^64bit,^huge_file, as pi-gen makes it) holding /usr/bin of this machine plus
#    random blobs, about 30 % of the image incompressible; then `xz -T0`.
# 2. Times, in the same run:
#    (a) one `xz -dc` of the base plus one `zstd -T0` of one raw image (the floor: one image);
#    (ours) 8 nodes through piimage (`examples/bench_nodes.rs`: decode the base, give each node
#        a new disk id and 16 changed 4 KiB blocks, write NAME.img.zst), with peak RSS;
#    (b) a naive per-node script: `xz -dc`, `printf | dd conv=notrunc` edits, `zstd -T0`;
#    and the scaling of piimage from 1 to 8 to 32 nodes (from the decoded base).
# Targets from the issue: ours / (a) <= 1.3, (b) / ours >= 8, peak RSS <= 256 MiB.
#
# Environment: BENCH_DIR (work directory, default /tmp/piimage-bench; needs ~25 GiB free),
# BENCH_SCALING (node counts, default "1 8 32"). Caches are warm (the base is built first).
# Every node's .img.zst is a separate file of about one compressed image, so on a slow disk the
# run is bounded by writeback; `BENCH_DIR=/dev/shm/piimage-bench BENCH_SCALING="1 8"` measures
# the CPU cost alone (needs ~10 GiB of RAM).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/sbin:/sbin"
WORK=${BENCH_DIR:-/tmp/piimage-bench}
SCALING=${BENCH_SCALING:-"1 8 32"}
NODES=8
CHANGED=16

cargo build --quiet --release --example bench_nodes
BIN="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/release/examples/bench_nodes"
mkdir -p "$WORK"
cd "$WORK"

build_base() {
  echo "== building the base (once)" >&2
  rm -rf base.img tree
  truncate -s 2G base.img
  sfdisk -q base.img <<'EOF'
label: dos
label-id: 0x5e3da3c1
start=16384, size=1048576, type=c
start=1064960, type=83
EOF
  mkfs.fat -F 32 -n bootfs -s 4 --offset 16384 base.img 524288 >/dev/null
  mkdir -p tree/boot tree/root/usr tree/root/var/lib/blobs tree/root/etc
  head -c 30M /dev/urandom >tree/boot/kernel8.img
  head -c 10M /dev/urandom >tree/boot/initramfs8
  printf 'console=serial0,115200 console=tty1 root=PARTUUID=5e3da3c1-02 rootwait\n' >tree/boot/cmdline.txt
  printf '[all]\narm_64bit=1\n' >tree/boot/config.txt
  MTOOLS_SKIP_CHECK=1 mcopy -s -i base.img@@$((16384 * 512)) tree/boot/* ::/
  cp -a /usr/bin tree/root/usr/bin
  for i in $(seq -w 1 22); do head -c 26M /dev/urandom >"tree/root/var/lib/blobs/blob$i"; done
  echo raspberrypi >tree/root/etc/hostname
  mke2fs -q -F -t ext4 -T default -L rootfs -O ^64bit,^huge_file \
    -E offset=$((1064960 * 512)) -d tree/root base.img $(((4194304 - 1064960) / 2))k 2>/dev/null
  e2fsck -fn "base.img?offset=$((1064960 * 512))" >/dev/null
  rm -rf tree
  xz -T0 -f base.img
}
[ -f base.img.xz ] || build_base

# timed LABEL CMD...: runs CMD, prints "seconds peak_rss_kib" on stdout, a line on stderr.
timed() {
  local label=$1
  shift
  sync
  /usr/bin/time -f '%e %M' -o .time "$@" >&2
  local secs rss
  read -r secs rss <.time
  printf '  %-44s %8.2f s  %6d MiB peak RSS\n' "$label" "$secs" $((rss / 1024)) >&2
  echo "$secs $rss"
}
add() { python3 -c "print(round($1 + $2, 2))"; }
div() { python3 -c "print(round($1 / $2, 2))"; }

echo "== base: $(du -h --apparent-size base.img.xz | cut -f1) compressed, $(xz -l --robot base.img.xz | awk '/^totals/ {print $5}') bytes raw" >&2
echo "== (a) one image: xz -dc + zstd -T0" >&2
read -r a1 _ < <(timed "xz -dc base.img.xz > a.img" bash -c 'xz -dc base.img.xz > a.img')
read -r a2 _ < <(timed "zstd -T0 a.img" zstd -q -T0 -f a.img -o a.img.zst)
a=$(add "$a1" "$a2")
one_zst=$(stat -c %s a.img.zst)
rm -f a.img a.img.zst

echo "== piimage: $NODES nodes from base.img.xz (decode included)" >&2
rm -rf out
# --sync: each output is flushed to the disk before its rename, as `piimage build` does (the
# baselines below do not flush; that only makes the comparison harder for piimage).
read -r ours ours_rss < <(timed "bench_nodes --nodes $NODES --sync" "$BIN" --base base.img.xz \
  --out out --nodes $NODES --changed $CHANGED --formats zst --sync)
node_zst=$(stat -c %s out/node00.img.zst)
raw=out/base.img
echo "== piimage: $NODES nodes, also image sha256 and bmap (decoded base)" >&2
rm -rf full
read -r full full_rss < <(timed "bench_nodes --image-sha256 --bmap" "$BIN" --base "$raw" --out full \
  --nodes $NODES --changed $CHANGED --formats zst --image-sha256 --bmap)
rm -rf full

echo "== (b) naive script: $NODES x (xz -dc, dd edits, zstd -T0)" >&2
cat >naive.sh <<'EOF'
set -euo pipefail
for i in $(seq 1 "$NODES"); do
  xz -dc base.img.xz > node.img
  printf "\\x$(printf %02x "$i")\\x00\\x00\\x00" | dd of=node.img bs=1 seek=440 conv=notrunc status=none
  for k in $(seq 1 "$CHANGED"); do
    dd if=/dev/urandom of=node.img bs=4096 seek=$(( (RANDOM * 32768 + RANDOM) % 524288 )) count=1 conv=notrunc status=none
  done
  zstd -q -T0 -f node.img -o "naive$i.img.zst"
  rm node.img
done
EOF
read -r b _ < <(timed "naive script" env NODES=$NODES CHANGED=$CHANGED bash naive.sh)
rm -f naive*.img.zst naive.sh node.img

echo "== scaling (decoded base, .img.zst only)" >&2
scaling=""
for n in $SCALING; do
  rm -rf "scale$n"
  read -r s r < <(timed "bench_nodes --nodes $n" "$BIN" --base "$raw" --out "scale$n" \
    --nodes "$n" --changed $CHANGED --formats zst)
  scaling="$scaling  $n nodes: ${s} s ($(div "$s" "$n") s/node), peak RSS $((r / 1024)) MiB\n"
  rm -rf "scale$n"
done
rm -rf out

cat <<EOF

== results ($(nproc) cores)
(a) xz -dc + zstd -T0, one image:     ${a} s   (.img.zst ${one_zst} bytes)
piimage, $NODES nodes (from .img.xz):     ${ours} s   peak RSS $((ours_rss / 1024)) MiB   (node .img.zst ${node_zst} bytes)
piimage, $NODES nodes + sha256 + bmap:    ${full} s   peak RSS $((full_rss / 1024)) MiB
(b) naive script, $NODES nodes:           ${b} s
ratio piimage / (a):   $(div "$ours" "$a")   (target <= 1.3)
ratio (b) / piimage:   $(div "$b" "$ours")   (target >= 8)
scaling:
$(printf "%b" "$scaling")
EOF

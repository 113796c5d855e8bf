#!/usr/bin/env bash
# Makes the binary seeds of the fuzz corpora (fuzz/corpus/{ext4,fat,disk}/) with the real tools,
# reproducibly (fixed UUIDs, volume ids and times). The text and recipe seeds are written by
# hand. Needs e2fsprogs, dosfstools, mtools, fdisk. The FAT seeds come out byte-identical; the
# ext4 ones differ in inode change times (mke2fs -d copies the source files' ctime, which cannot
# be set), which does not matter to a seed.
set -euo pipefail
cd "$(dirname "$0")"
export PATH="$PATH:/usr/sbin:/sbin"
export E2FSPROGS_FAKE_TIME=1700000000 SOURCE_DATE_EPOCH=1700000000 TZ=UTC
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
mkdir -p corpus/ext4 corpus/fat corpus/disk

# A root tree with the files a build reads and edits, a link and a home directory.
root="$tmp/root"
mkdir -p "$root/etc" "$root/home/pi/.ssh" "$root/root" "$root/usr/share/zoneinfo"
printf 'root:x:0:0:root:/root:/bin/bash\npi:x:1000:1000:,,,:/home/pi:/bin/bash\n' > "$root/etc/passwd"
printf 'root:x:0:\nsudo:x:27:pi\npi:x:1000:\n' > "$root/etc/group"
printf 'root:*:19000:0:99999:7:::\npi:!:19000:0:99999:7:::\n' > "$root/etc/shadow"
printf 'PRETTY_NAME="Debian GNU/Linux 13 (trixie)"\nID=debian\nVERSION_CODENAME=trixie\n' > "$root/etc/os-release"
printf '127.0.0.1\tlocalhost\n' > "$root/etc/hosts"
printf 'proc /proc proc defaults 0 0\n' > "$root/etc/fstab"
printf 'welcome\n' > "$root/etc/motd"
: > "$root/usr/share/zoneinfo/UTC"
ln -s /usr/share/zoneinfo/UTC "$root/etc/localtime"
find "$root" -exec touch -h -d @1700000000 {} +

mkext4() { # out size-KiB extra-mke2fs-options...
  local out=$1 size=$2; shift 2
  rm -f "$out"
  mke2fs -q -F -t ext4 -b 1024 -N 64 -U 11111111-2222-3333-4444-555555555555 \
    -E hash_seed=66666666-7777-8888-9999-000000000000,root_owner=0:0 "$@" -d "$root" "$out" "${size}k" >/dev/null 2>&1
}
mkext4 corpus/ext4/journal.img 4096 -J size=1
mkext4 corpus/ext4/no-journal.img 512 -O ^has_journal,^resize_inode

# A boot partition with the files a build edits.
boot="$tmp/boot"
mkdir -p "$boot/overlays"
printf 'console=serial0,115200 root=PARTUUID=12345678-02 rootfstype=ext4 fsck.repair=yes rootwait\n' > "$boot/cmdline.txt"
printf 'dtparam=audio=on\n[pi5]\nusb_max_current_enable=1\n[all]\narm_64bit=1\n' > "$boot/config.txt"
: > "$boot/overlays/README"
find "$boot" -exec touch -d @1700000000 {} +
mkfat() { # out size-KiB fat-bits
  rm -f "$1"
  mkfs.fat -C -F "$3" -s 1 -i 12345678 --invariant -n BOOTFS "$1" "$2" >/dev/null
  MTOOLS_SKIP_CHECK=1 mcopy -s -m -i "$1" "$boot"/* ::/
}
mkfat corpus/fat/fat12.img 256 12
mkfat corpus/fat/fat16.img 4096 16

# Whole disks: MBR (FAT then ext4, as Raspberry Pi OS) and GPT.
mkdisk() { # out label
  local out=$1
  rm -f "$out"
  truncate -s 12M "$out"
  printf 'label: %s\n%s\nstart=2048, size=8192, type=%s\nstart=10240, size=8192, type=%s\n' \
    "$2" "$([ "$2" = dos ] && echo 'label-id: 0x12345678' || echo 'label-id: 11111111-2222-3333-4444-555555555555')" \
    "$([ "$2" = dos ] && echo c || echo EBD0A0A2-B9E5-4433-87C0-68B6B72699C7)" \
    "$([ "$2" = dos ] && echo 83 || echo 0FC63DAF-8483-4772-8E79-3D69D8477DE4)" \
    | sfdisk -q "$out"
  if [ "$2" = gpt ]; then
    sfdisk -q --part-uuid "$out" 1 aaaaaaaa-0000-0000-0000-000000000001
    sfdisk -q --part-uuid "$out" 2 aaaaaaaa-0000-0000-0000-000000000002
  fi
  mkfat "$tmp/p1" 4096 16
  mkext4 "$tmp/p2" 4096 -J size=1
  dd if="$tmp/p1" of="$out" bs=512 seek=2048 conv=notrunc status=none
  dd if="$tmp/p2" of="$out" bs=512 seek=10240 conv=notrunc status=none
}
mkdisk corpus/disk/mbr.img dos
mkdisk corpus/disk/gpt.img gpt
for f in corpus/ext4/*.img; do e2fsck -fn "$f" >/dev/null 2>&1; done
for f in corpus/fat/*.img; do fsck.fat -n "$f" >/dev/null; done
sha256sum corpus/*/*.img

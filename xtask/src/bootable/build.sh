#!/usr/bin/env bash
# Builds one bootable amd64 disk image laid out like an official Raspberry Pi OS or Ubuntu raspi
# image (see tests/fixtures/INDEX.md, "Bootable images"). Called by `cargo xtask bootable`:
#
#   build.sh OUT_DIR FLAVOUR FILES_DIR
#
# FLAVOUR is bookworm, trixie or ubuntu. Needs root (mmdebstrap's root mode, chroot), network
# access to the Debian mirror, and sfdisk, mkfs.fat, mtools, mke2fs, e2fsck, fsck.fat.
# Writes OUT_DIR/disk.img and OUT_DIR/info.env; nothing else is left behind.
set -euo pipefail
export LC_ALL=C.UTF-8 TZ=UTC SOURCE_DATE_EPOCH=1767225600 # 2026-01-01

out=$1 flavour=$2 files=$3
here=$(cd "$(dirname "$0")" && pwd)
work=$out/work
tree=$work/tree
boot=$work/boot
rm -rf "$work"
mkdir -p "$work" "$boot"

common=systemd-sysv,udev,dbus,openssh-server,sudo,tzdata,locales,linux-image-amd64,initramfs-tools
common+=,busybox,python3,fdisk,e2fsprogs,keyboard-configuration,xkb-data,iproute2,kmod,whiptail,procps
case $flavour in
  bookworm) suite=bookworm extra=network-manager ;;
  trixie) suite=trixie extra=network-manager,netplan.io,cloud-init ;;
  ubuntu) suite=trixie extra=netplan.io,cloud-init,cloud-guest-utils ;;
  *) echo "unknown flavour $flavour" >&2; exit 2 ;;
esac

# Each flavour: disk id, first sector of p1, FAT options, ext4 label and features.
case $flavour in
  bookworm) diskid=5e3da3c1 p1=8192 fatopts=(-n bootfs -s 4) ext4=(-L rootfs -O ^64bit,^huge_file) ;;
  trixie) diskid=8a4c1f27 p1=16384 fatopts=(-n bootfs -s 1)
    ext4=(-L rootfs -O ^64bit,^huge_file,orphan_file,metadata_csum_seed) ;;
  ubuntu) diskid=1e7b0d42 p1=2048 fatopts=(-n system-boot -s 1 -S 512) ext4=(-L writable) ;;
esac
# The Debian tree as mmdebstrap leaves it is kept beside the cache (keyed by suite and package
# list), so that changing setup.sh does not download and install everything again.
cache=$(dirname "$out")
key=$(printf '%s\n' "$suite" "$common,$extra" | sha256sum | cut -c1-16)
base_tar=$cache/.debian-$flavour-$key.tar
if [ ! -s "$base_tar" ]; then
  echo "== mmdebstrap $suite ($flavour)" >&2
  rm -f "$cache"/.debian-"$flavour"-*.tar
  mmdebstrap --quiet --variant=apt --format=tar --include="$common,$extra" "$suite" "$base_tar.tmp" >&2
  mv "$base_tar.tmp" "$base_tar"
fi
mkdir -p "$tree"
tar --xattrs --xattrs-include='*' --numeric-owner -xpf "$base_tar" -C "$tree"
bash "$here/setup.sh" "$tree" "$flavour" "$files" "$diskid" "$boot" >&2

# Partition sizes: a 256 MiB FAT (the real ones are 512 MiB; only the files matter here) and a
# root with 20 % + 256 MiB free, rounded up to 8 MiB, as pi-gen sizes it.
fat_sectors=524288
used_kib=$(du -sk --apparent-size "$tree" | cut -f1)
root_mib=$(( (used_kib * 12 / 10 / 1024 + 256 + 7) / 8 * 8 ))
root_sectors=$(( root_mib * 2048 ))
p2=$(( (p1 + fat_sectors + 8191) / 8192 * 8192 ))
[ "$flavour" = ubuntu ] && p2=$(( p1 + fat_sectors ))
total=$(( (p2 + root_sectors) * 512 ))
img=$out/disk.img
rm -f "$img"
truncate -s "$total" "$img"
boot_flag=""
[ "$flavour" = ubuntu ] && boot_flag=", bootable"
sfdisk --quiet "$img" <<EOT
label: dos
label-id: 0x$diskid
unit: sectors

start=$p1, size=$fat_sectors, type=c$boot_flag
start=$p2, size=$root_sectors, type=83
EOT

fat_off=$(( p1 * 512 ))
mkfs.fat -F 32 "${fatopts[@]}" -i "${diskid:0:8}" -h "$p1" --offset "$p1" "$img" $(( fat_sectors / 2 )) >&2
MTOOLS_SKIP_CHECK=1 mcopy -s -p -m -i "$img@@$fat_off" "$boot"/* ::/
mkfs.ext4 -q -F -T default "${ext4[@]}" -U "$diskid-0000-4000-8000-00000000$( [ $flavour = ubuntu ] && echo 0001 || echo 0002 )" -E "offset=$(( p2 * 512 )),hash_seed=6f1c3b7e-0d52-4a43-9d2a-5c1e8b9f0a11" \
  -d "$tree" "$img" "${root_mib}M" 2>&1 | grep -v 'block count mismatch' >&2 || true
e2fsck -fn "$img?offset=$(( p2 * 512 ))" >&2
dd if="$img" of="$work/fat.img" bs=512 skip="$p1" count="$fat_sectors" status=none
fsck.fat -n "$work/fat.img" >&2

case $flavour in
  ubuntu) kernel=vmlinuz initrd=initrd.img ;;
  *) kernel=kernel8.img initrd=initramfs8 ;;
esac
cat > "$out/info.env" <<EOT
flavour=$flavour
suite=$suite
disk_id=$diskid
boot_offset=$fat_off
root_offset=$(( p2 * 512 ))
kernel=$kernel
initrd=$initrd
EOT
rm -rf "$work"

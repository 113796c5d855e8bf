#!/usr/bin/env bash
# Installs every tool the tests use as an oracle (apt-get and pip; needs root or sudo) and
# checks they are all there. `.ci/run` runs it always; `ci/test.sh` runs it when a tool is
# missing. `--if-missing`: install only when a checked tool is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
  dosfstools mtools fdisk e2fsprogs   # mkfs.fat/fsck.fat, mtools, sfdisk, mke2fs/e2fsck/debugfs
  xz-utils zstd gzip                  # reference (de)compressors
  bmap-tools                          # bmaptool (output checks)
  python3 openssh-client      # libxcrypt via python3 crypt; ssh-keygen
  openssh-server netplan.io cloud-init   # sshd -t, netplan generate, cloud-init schema
  mmdebstrap                          # the bootable test images (real Debian trees)
  dnsmasq-base nfs-kernel-server      # dnsmasq --test, exportfs (netboot output checks)
  man-db groff-base bsdutils          # man -l of the generated man pages; script(1) for a tty
  systemd                             # systemd-analyze verify (the presets' units)
  docker-compose openmpi-bin          # docker-compose config, mpirun's hostfile map (presets)
)
# What the tests call. The boot tests' own tools (mmdebstrap, qemu-system-x86_64) are installed
# too, but only needed as root: without root the boot tests say so and pass.
tools=(sfdisk mkfs.fat fsck.fat mcopy mke2fs e2fsck debugfs xz zstd gzip bmaptool dnsmasq exportfs
       ssh-keygen sshd netplan cloud-init man script systemd-analyze docker-compose mpirun)
export PATH="$PATH:/usr/sbin:/sbin"
missing() {
  local t
  for t in "${tools[@]}"; do command -v "$t" >/dev/null 2>&1 || echo "$t"; done
  if [ "$(id -u)" -eq 0 ]; then
    for t in mmdebstrap qemu-system-x86_64; do command -v "$t" >/dev/null 2>&1 || echo "$t"; done
  fi
}
missing_py() {
  command -v ansible-inventory >/dev/null 2>&1 || echo "ansible-core"
  python3 -c 'import jsonschema' 2>/dev/null || echo "jsonschema"
}

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
can_install() { [ -z "$SUDO" ] || sudo -n true 2>/dev/null; }

if { [ "${1:-}" != "--if-missing" ] || [ -n "$(missing)" ]; } \
   && command -v apt-get >/dev/null 2>&1 && can_install; then
  echo "== installing the test oracles (apt-get): ${packages[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # qemu's system emulator for the boot tests: plain bookworm's conflicts with the machine's
  # newer qemu-utils, so it comes from bookworm-backports (where that qemu-utils comes from).
  if grep -qs 'VERSION_CODENAME=bookworm' /etc/os-release \
     && ! grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
    echo 'deb http://deb.debian.org/debian bookworm-backports main' \
      | $SUDO tee /etc/apt/sources.list.d/piimage-ci-backports.list >/dev/null
  fi
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
  if grep -qs 'VERSION_CODENAME=bookworm' /etc/os-release; then
    $SUDO apt-get install -y -qq --no-install-recommends -t bookworm-backports qemu-system-x86 >/dev/null
  else
    $SUDO apt-get install -y -qq --no-install-recommends qemu-system-x86 >/dev/null
  fi
fi

# ansible-inventory checks the generated inventory; jsonschema validates the Raspberry Pi Imager
# manifest against Imager's published schema (PyPI, for the machine's python3).
for pkg in $(missing_py); do
  echo "== installing the test oracles (pip): $pkg"
  python3 -m pip install -q --disable-pip-version-check "$pkg" >/dev/null 2>&1 \
    || python3 -m pip install -q --disable-pip-version-check --break-system-packages "$pkg" >/dev/null
done
if command -v pyenv >/dev/null 2>&1; then pyenv rehash; fi

if [ -n "$(missing)$(missing_py)" ]; then
  echo "missing test tools: $(missing; missing_py)" | tr '\n' ' ' >&2
  echo >&2
  echo "(this script installs them with apt-get and pip when run as root or with sudo)" >&2
  exit 1
fi


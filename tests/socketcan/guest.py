"""Run a command inside a throw-away Linux guest that has the kernel's real CAN stack.

    python tests/socketcan/guest.py [--ifaces vcan0,vcan1] [--mtu 72] -- COMMAND [ARGS...]

Machines that build the project (containers, CI runners) often run kernels without ``AF_CAN``. The guest boots a
Debian kernel that has it: Debian's user-mode Linux (package ``user-mode-linux``, an ordinary process) when it
boots on this host, otherwise ``qemu-system-x86_64`` with ``linux-image-amd64`` (KVM when it works, else
emulation); ``SDV_GUEST_BACKEND=uml|qemu-kvm|qemu`` picks one (Debian's user-mode Linux has no ``can-isotp``
module, its distribution kernel under qemu has). The guest's root file system is this machine's, read-only, under a tmpfs overlay: it runs the
project's own virtual environment and can-utils, and whatever it writes is gone afterwards. The command runs as
root in the current directory with the current environment; ``lo`` and the virtual CAN interfaces are up. Its
output (stdout and stderr together) is copied to stdout while it runs.

Exit status: the command's; 124 when it ran out of time; 125 when no guest could run (``guest unavailable:
REASON`` on stderr) or the guest ended without the command's status (``guest failed: ...``). With
``--otherwise-here VARIABLE``, when no guest can run, the command runs on this machine instead with ``VARIABLE``
set to the reason: the SocketCAN tests report themselves skipped with it (a guest that failed is never hidden). Missing Debian packages are installed with ``apt-get`` when
running as root (``--no-install`` forbids it).
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import lzma
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

__all__ = ["GuestFailed", "GuestUnavailable", "main", "run"]

CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "sdv-socketcan-guest"
UML_KERNEL = Path("/usr/bin/linux.uml")
UML_MODULES = Path("/usr/lib/uml/modules")
CAN_MODULES = ("can", "can_raw", "can_bcm", "can_gw", "can_isotp", "vcan", "vxcan")
"""Loaded in the guest before the command (what a kernel builds in is simply not found as a module)."""
KERNEL_TREES = (
    "kernel/net/can",
    "kernel/drivers/net/can/vcan.ko",
    "kernel/drivers/net/can/vxcan.ko",
    "kernel/drivers/net/can/dev",
    "kernel/fs/overlayfs",
    "kernel/drivers/virtio",
    "kernel/net/9p",
    "kernel/fs/9p",
    "kernel/fs/netfs",
    "kernel/fs/fscache",
)
BACKENDS = ("uml", "qemu-kvm", "qemu")
BACKEND_VARIABLE = "SDV_GUEST_BACKEND"
"""Names the backend to use (one of :data:`BACKENDS`) instead of the first that boots, e.g. qemu for its kernel."""
_SKIPPED_ENVIRONMENT = {"PWD", "OLDPWD", "SHLVL", "_", "HOSTNAME", "TERM", "DISPLAY", "XDG_RUNTIME_DIR"}

# The guest's first process, from the initramfs: modules, the host's root read-only under a tmpfs overlay, the
# virtual file systems, the CAN interfaces, then the host's shell runs the command script in the exchange dir.
_INIT = r"""#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc && mount -t sysfs sysfs /sys && mount -t devtmpfs devtmpfs /dev
for word in $(cat /proc/cmdline); do
  case $word in sdvguest.*=*) key=${word%%=*}; eval "${key#sdvguest.}=\${word#*=}";; esac
done
halt() { echo "guest: $*" >&2; poweroff -f; }
share() {  # share SOURCE ro|rw DIR
  if [ "$backend" = uml ]; then mount -t hostfs -o "$2,$1" none "$3"
  else mount -t 9p -o "trans=virtio,version=9p2000.L,msize=262144,$2" "$1" "$3"; fi
}
for module in virtio_pci 9pnet_virtio 9p overlay $(echo "$modules" | tr , ' '); do modprobe "$module" 2>/dev/null; done
mkdir -p /host /layer /root
share "$rootsrc" ro /host || halt "cannot mount the host's root"
mount -t tmpfs -o mode=755 tmpfs /layer && mkdir -p /layer/upper /layer/work
mount -t overlay -o lowerdir=/host,upperdir=/layer/upper,workdir=/layer/work overlay /root \
  || halt "no overlay file system"
mkdir -p /root/lib/modules && cp -a /lib/modules/. /root/lib/modules/
for mnt in dev proc sys; do mount --move /$mnt /root/$mnt; done
mkdir -p /root/dev/pts /root/dev/shm
mount -t devpts devpts /root/dev/pts && mount -t tmpfs -o mode=1777 tmpfs /root/dev/shm
mount -t tmpfs -o mode=755 tmpfs /root/run && mount -t tmpfs -o mode=1777 tmpfs /root/tmp
hostname sdv-guest
ip link set lo up
for iface in $(echo "$ifaces" | tr , ' '); do
  ip link add dev "$iface" type vcan && ip link set "$iface" mtu "$mtu" up || echo "guest: no $iface" >&2
done
mkdir -p "/root$exchange" && share "$exchangesrc" rw "/root$exchange" || halt "cannot mount $exchange"
exec switch_root /root /bin/sh "$exchange/inside.sh"
"""

_INSIDE = r"""exchange=${0%/*}
( set -a; . "$exchange/environment"; set +a; . "$exchange/command" ) </dev/null >"$exchange/output" 2>&1
echo $? >"$exchange/status"
sync
/bin/busybox poweroff -f
"""


class GuestUnavailable(Exception):
    """No guest can run here: the message says why."""


class GuestFailed(Exception):
    """A guest booted but ended without the command's exit status (a crash, not a missing capability)."""


def _install(packages: list[str], allow: bool) -> None:
    missing = [package for package in packages if not _installed(package)]
    if not missing:
        return
    if not allow or os.geteuid() != 0:
        raise GuestUnavailable(f"Debian packages missing and not installable here: {' '.join(missing)}")
    environment = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (
        ["apt-get", "update", "-q"],
        ["apt-get", "install", "-y", "-q", "--no-install-recommends", *missing],
    ):
        result = subprocess.run(command, env=environment, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            tail = (result.stderr or result.stdout).strip().splitlines()[-1:]
            raise GuestUnavailable(f"{' '.join(command[:2])} failed: {' '.join(tail)}")


def _installed(package: str) -> bool:
    if shutil.which("dpkg-query") is None:
        return False
    result = subprocess.run(
        ["dpkg-query", "-W", "-f=${Status}", package], capture_output=True, text=True, check=False
    )
    return result.stdout.endswith("installed")


def _initramfs(modules_dir: Path, output: Path) -> None:
    """An initramfs with static busybox, the init above and the CAN, overlay and 9p modules of one kernel."""
    busybox = Path("/bin/busybox")
    with tempfile.TemporaryDirectory(dir=CACHE) as work:
        root = Path(work)
        for directory in ("bin", "dev", "proc", "sys", "lib/modules"):
            (root / directory).mkdir(parents=True)
        shutil.copy2(busybox, root / "bin/busybox")
        release = modules_dir.name
        target = root / "lib/modules" / release
        target.mkdir()
        for name in ("modules.order", "modules.builtin", "modules.builtin.modinfo"):
            if (modules_dir / name).exists():
                shutil.copy2(modules_dir / name, target / name)
        for tree in KERNEL_TREES:
            for source in sorted(modules_dir.glob(tree + "*")):
                files = [source] if source.is_file() else sorted(source.rglob("*.ko*"))
                for file in files:
                    destination = target / file.relative_to(modules_dir)
                    destination.parent.mkdir(parents=True, exist_ok=True)
                    if file.suffix == ".xz":  # busybox modprobe reads plain modules only
                        destination.with_suffix("").write_bytes(lzma.decompress(file.read_bytes()))
                    else:
                        shutil.copy2(file, destination)
        subprocess.run([str(busybox), "depmod", "-b", str(root), release], check=True)
        (root / "init").write_text(_INIT)
        (root / "init").chmod(0o755)
        listing = subprocess.run(["find", "."], cwd=root, capture_output=True, check=True, text=True).stdout
        archive = subprocess.run(
            [str(busybox), "cpio", "-o", "-H", "newc"],
            cwd=root,
            input=listing.encode(),
            capture_output=True,
            check=True,
        ).stdout
        output.write_bytes(gzip.compress(archive, compresslevel=1))


def _busybox_ready(allow: bool) -> None:
    busybox = Path("/bin/busybox")
    static = (
        busybox.exists()
        and subprocess.run(["ldd", str(busybox)], capture_output=True, check=False).returncode != 0
    )
    if not static:
        _install(["busybox-static"], allow)


def _uml_kernel(allow: bool) -> tuple[Path, Path]:
    _install(["user-mode-linux"], allow)
    releases = sorted(UML_MODULES.iterdir()) if UML_MODULES.is_dir() else []
    if not releases:
        raise GuestUnavailable(f"no kernel modules under {UML_MODULES}")
    initrd = CACHE / f"uml-{releases[-1].name}.initrd.gz"
    if not initrd.exists():
        _initramfs(releases[-1], initrd)
    return UML_KERNEL, initrd


def _qemu_kernel(allow: bool) -> tuple[Path, Path]:
    _install(["qemu-system-x86"], allow)
    directory = CACHE / "qemu"
    kernel, initrd = directory / "vmlinuz", directory / "initrd.gz"
    if kernel.exists() and initrd.exists():
        return kernel, initrd
    depends = subprocess.run(
        ["apt-cache", "depends", "linux-image-amd64"], capture_output=True, text=True, check=False
    ).stdout
    names = [line.split()[-1] for line in depends.splitlines() if "Depends: linux-image-" in line]
    if not names:
        raise GuestUnavailable("apt-cache does not know linux-image-amd64 (run apt-get update)")
    with tempfile.TemporaryDirectory(dir=CACHE) as work:
        download = subprocess.run(
            ["apt-get", "download", "-q", names[0]], cwd=work, capture_output=True, text=True, check=False
        )
        debs = list(Path(work).glob("*.deb"))
        if download.returncode != 0 or not debs:
            raise GuestUnavailable(f"apt-get download {names[0]} failed: {download.stderr.strip()[-200:]}")
        unpacked = Path(work) / "unpacked"
        subprocess.run(["dpkg-deb", "-x", str(debs[0]), str(unpacked)], check=True)
        modules = next((unpacked / "lib/modules").iterdir())
        directory.mkdir(parents=True, exist_ok=True)
        _initramfs(modules, initrd)
        shutil.copy2(next((unpacked / "boot").glob("vmlinuz-*")), kernel)
    return kernel, initrd


def _uml_command(kernel: Path, initrd: Path, exchange: Path, arguments: list[str]) -> list[str]:
    return [
        str(kernel),
        "mem=1024M",
        f"initrd={initrd}",
        "con=null",
        "con0=null,fd:1",
        f"uml_dir={exchange}",
        "sdvguest.backend=uml",
        "sdvguest.rootsrc=/",
        f"sdvguest.exchangesrc={exchange}",
        *arguments,
    ]


def _qemu_command(kernel: Path, initrd: Path, exchange: Path, arguments: list[str], kvm: bool) -> list[str]:
    accel = ["-accel", "kvm", "-cpu", "host"] if kvm else ["-accel", "tcg,thread=multi", "-cpu", "max"]
    share = "security_model=none,multidevs=remap"
    return [
        "qemu-system-x86_64",
        *accel,
        "-m",
        "1024",
        "-smp",
        str(min(2, os.cpu_count() or 1)),
        "-nodefaults",
        "-no-user-config",
        "-display",
        "none",
        "-serial",
        "stdio",
        "-no-reboot",
        "-kernel",
        str(kernel),
        "-initrd",
        str(initrd),
        "-virtfs",
        f"local,path=/,mount_tag=hostroot,readonly=on,{share}",
        "-virtfs",
        f"local,path={exchange},mount_tag=exchange,{share}",
        "-append",
        " ".join(
            [
                "console=ttyS0",
                "panic=-1",
                "quiet",
                "loglevel=1",
                "sdvguest.backend=qemu",
                "sdvguest.rootsrc=hostroot",
                "sdvguest.exchangesrc=exchange",
                *arguments,
            ]
        ),
    ]


def _boots(command: list[str], exchange: Path, seconds: float) -> bool:
    """Whether a guest started by ``command`` runs its command script within ``seconds`` (a probe running ``true``).

    A kernel that hangs instead of booting (KVM on some virtual machines) is given up on after ``seconds``.
    """
    (exchange / "command").write_text("true\n")
    (exchange / "environment").write_text("")
    with contextlib.suppress(subprocess.TimeoutExpired):
        subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=True, timeout=seconds, check=False)
    return (exchange / "status").exists()


def _backend(allow: bool, exchange: Path, arguments: list[str]) -> list[str]:
    """The command line of a guest that boots here, probing each backend once (the answer is cached).

    Raises:
        GuestUnavailable: no backend boots, or preparing one failed (no cache directory, a tool that failed).
    """
    try:
        return _probe(allow, exchange, arguments)
    except (OSError, subprocess.SubprocessError) as error:
        raise GuestUnavailable(f"cannot prepare a guest: {error}") from error


def _probe(allow: bool, exchange: Path, arguments: list[str]) -> list[str]:
    forced = os.environ.get(BACKEND_VARIABLE, "")
    if forced and forced not in BACKENDS:
        raise GuestUnavailable(f"{BACKEND_VARIABLE}={forced}: not one of {', '.join(BACKENDS)}")
    CACHE.mkdir(parents=True, exist_ok=True)
    choice = CACHE / "backend"
    _busybox_ready(allow)
    _install(["can-utils", "iproute2"], allow)
    known = forced or (choice.read_text().strip() if choice.exists() else "")
    kvm = os.access("/dev/kvm", os.R_OK | os.W_OK)
    candidates = [known] if known else ["uml", *(["qemu-kvm"] if kvm else []), "qemu"]
    reasons = []
    for name in candidates:
        try:
            if name == "uml":
                command = _uml_command(*_uml_kernel(allow), exchange, arguments)
            else:
                command = _qemu_command(*_qemu_kernel(allow), exchange, arguments, name == "qemu-kvm")
        except GuestUnavailable as error:
            reasons.append(f"{name}: {error}")
            continue
        # An emulated CPU boots in about 10 s; user-mode Linux and KVM in a few.
        if known or _boots(command, exchange, 90 if name == "qemu" else 30):
            for probe_file in ("status", "output"):
                (exchange / probe_file).unlink(missing_ok=True)
            if not forced:
                choice.write_text(name + "\n")
            return command
        reasons.append(f"{name}: the probe guest did not boot")
    raise GuestUnavailable("; ".join(reasons))


def _follow(path: Path, done: threading.Event) -> None:
    """Copy the command's output file to stdout as it grows."""
    while not path.exists() and not done.is_set():
        done.wait(0.2)
    if not path.exists():
        return
    with path.open("rb") as output:
        while True:
            chunk = output.read(65536)
            if chunk:
                sys.stdout.buffer.write(chunk)
                sys.stdout.buffer.flush()
            elif done.is_set():
                return
            else:
                done.wait(0.2)


def run(
    command: list[str], *, ifaces: str = "vcan0", mtu: int = 72, timeout: float = 1200, install: bool = True
) -> int:
    """Run ``command`` in a guest; returns its exit status (124 when it ran out of time).

    Raises:
        GuestUnavailable: when no guest can run here.
        GuestFailed: when the guest ended without the command's exit status.
    """
    shm = Path("/dev/shm")
    base = shm if shm.is_dir() and os.access(shm, os.W_OK) else None
    with tempfile.TemporaryDirectory(prefix="sdv-guest-", dir=base) as directory:
        exchange = Path(directory)
        arguments = [
            f"sdvguest.exchange={exchange}",
            f"sdvguest.ifaces={ifaces}",
            f"sdvguest.mtu={mtu}",
            f"sdvguest.modules={','.join(CAN_MODULES)}",
        ]
        (exchange / "inside.sh").write_text(_INSIDE)
        guest = _backend(install, exchange, arguments)
        environment = "".join(
            f"export {key}={shlex.quote(value)}\n"
            for key, value in os.environ.items()
            if key not in _SKIPPED_ENVIRONMENT and key.isidentifier()
        )
        (exchange / "environment").write_text(environment)
        (exchange / "command").write_text(
            f"cd {shlex.quote(os.getcwd())} || exit 125\n{shlex.join(command)}\n"
        )
        done = threading.Event()
        follower = threading.Thread(target=_follow, args=(exchange / "output", done), daemon=True)
        follower.start()
        started = time.monotonic()
        with (exchange / "console").open("wb") as console:
            try:
                subprocess.run(
                    guest,
                    stdin=subprocess.DEVNULL,
                    stdout=console,
                    stderr=console,
                    timeout=timeout,
                    check=False,
                )
            except subprocess.TimeoutExpired:
                done.set()
                follower.join()
                print(f"guest: timed out after {timeout:.0f} s", file=sys.stderr)
                return 124
        done.set()
        follower.join()
        status = exchange / "status"
        if not status.exists():
            tail = (exchange / "console").read_text(errors="replace").strip().splitlines()[-5:]
            raise GuestFailed(f"the guest returned no exit status: {' | '.join(tail)}")
        print(f"guest: {time.monotonic() - started:.1f} s", file=sys.stderr)
        return int(status.read_text().strip() or 125)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ifaces", default="vcan0", help="virtual CAN interfaces to create, comma-separated")
    parser.add_argument("--mtu", type=int, default=72, help="their MTU: 72 for CAN FD, 16 for classic CAN")
    parser.add_argument("--timeout", type=float, default=1200, help="seconds before the guest is stopped")
    parser.add_argument("--no-install", action="store_true", help="never run apt-get")
    parser.add_argument(
        "--otherwise-here",
        metavar="VARIABLE",
        help="when no guest can run, run the command here with VARIABLE set to the reason (tests skip on it)",
    )
    parser.add_argument("command", nargs=argparse.REMAINDER)
    options = parser.parse_args(argv)
    command = options.command[1:] if options.command[:1] == ["--"] else options.command
    if not command:
        parser.error("a command to run is needed")
    try:
        return run(
            command,
            ifaces=options.ifaces,
            mtu=options.mtu,
            timeout=options.timeout,
            install=not options.no_install,
        )
    except GuestUnavailable as error:
        print(f"guest unavailable: {error}", file=sys.stderr)
        if options.otherwise_here is None:
            return 125
        environment = {**os.environ, options.otherwise_here: f"no SocketCAN guest could run: {error}"}
        return subprocess.run(command, env=environment, check=False).returncode
    except GuestFailed as error:
        print(f"guest failed: {error}", file=sys.stderr)
        return 125


if __name__ == "__main__":
    sys.exit(main())

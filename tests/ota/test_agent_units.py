"""The update agent's pure parts and edges: the transition table, boot selection rules and stores, slots."""

from __future__ import annotations

import tarfile
from pathlib import Path

import pytest

from conftest import entry, fake_fw_tools, make_tar
from sdv.ota.agent.boot import BootEnv, FileBootSelector, MemoryBootSelector, UBootBootSelector
from sdv.ota.agent.slots import ImageSlotGroup, TreeSlotGroup, tree_digest
from sdv.ota.agent.state import (
    TRANSITIONS,
    AgentRecord,
    AgentState,
    BundleRecord,
    GroupRecord,
    transition,
)
from sdv.ota.bundle.manifest import FileTreeTarget, Payload, SlotImageTarget
from sdv.ota.errors import BootSelectorError, IllegalTransitionError, SlotError

_BUNDLE = BundleRecord(name="demo", version="1.0.0", release_counter=7, bundle_sha256="0" * 64)


@pytest.mark.parametrize(
    ("source", "target"),
    [(source, target) for source in AgentState for target in AgentState if target not in TRANSITIONS[source]],
)
def test_every_transition_outside_the_table_is_refused(source: AgentState, target: AgentState) -> None:
    with pytest.raises(IllegalTransitionError, match=f"from {source} to {target}"):
        transition(AgentRecord(state=source), target)


@pytest.mark.parametrize(
    ("source", "target"),
    # in the enum's order, not the set's: every pytest-xdist worker must collect the same list
    [
        (source, target)
        for source, targets in TRANSITIONS.items()
        for target in AgentState
        if target in targets
    ],
)
def test_every_transition_in_the_table_is_allowed_and_counted(source: AgentState, target: AgentState) -> None:
    record = transition(AgentRecord(state=source, sequence=4), target)
    assert (record.state, record.sequence) == (target, 5)


def test_the_installed_bundle_changes_only_at_commit() -> None:
    verifying = AgentRecord(
        state=AgentState.VERIFYING, bundle=_BUNDLE, groups={"rootfs": GroupRecord(trial_slot="B")}
    )
    with pytest.raises(IllegalTransitionError, match="only at commit"):
        transition(verifying, AgentState.ROLLING_BACK, installed=_BUNDLE)
    changed = verifying.with_group("rootfs", installed=_BUNDLE, counter=7)
    with pytest.raises(IllegalTransitionError, match=r"slot group rootfs: .* only at commit"):
        transition(verifying, AgentState.ROLLING_BACK, groups=changed)
    committed = transition(verifying, AgentState.ACTIVATED, installed=_BUNDLE, groups=changed)
    assert committed.installed_counter == 7
    assert AgentRecord().installed_counter == 0


def test_a_trial_slot_falls_back_after_its_attempts() -> None:
    env = BootEnv().with_trial("B", 2)
    booted = []
    for _ in range(4):
        env = env.next_boot(2)
        booted.append(env.booted)
    assert booted == ["B", "B", "A", "A"]


def test_a_good_slot_keeps_booting_and_a_bad_one_never_again() -> None:
    env = BootEnv().with_trial("B", 2).next_boot(2).with_good("B", 2)
    assert env.order == ("B", "A") and env.left("B") == 2
    env = env.with_bad("B", 2)
    assert env.order == ("A", "B") and env.left("B") == 0 and env.left("A") >= 2
    assert env.next_boot(2).booted == "A"


def test_with_no_attempts_left_anywhere_the_bootloader_resets_the_counters() -> None:
    env = BootEnv(order=("A", "B"), attempts_left={"A": 0, "B": 0}).next_boot(3)
    assert env.booted == "A" and env.attempts_left == {"A": 2, "B": 3}


def test_file_selector_persists_the_selection(tmp_path: Path) -> None:
    path = tmp_path / "boot.json"
    selector = FileBootSelector(path, max_attempts=2)
    assert selector.booted() == "A"
    selector.set_trial("B")
    assert FileBootSelector(path, max_attempts=2).boot() == "B"
    assert FileBootSelector(path, max_attempts=2).attempts_left("B") == 1
    path.write_text("{not json")
    with pytest.raises(BootSelectorError, match="malformed"):
        selector.load()


def test_memory_selector_is_the_same_model() -> None:
    selector = MemoryBootSelector(max_attempts=1)
    selector.set_trial("B")
    assert [selector.boot(), selector.boot()] == ["B", "A"]


def test_uboot_selector_uses_raucs_variables_through_fw_tools(tmp_path: Path) -> None:
    printenv, setenv, store = fake_fw_tools(tmp_path)
    selector = UBootBootSelector(printenv, setenv, max_attempts=3)
    assert selector.booted() == "A"  # an empty environment: the factory slot
    selector.set_trial("B")
    variables = selector.variables()
    assert variables["BOOT_ORDER"] == "B A" and variables["BOOT_B_LEFT"] == "3"
    assert selector.boot() == "B"
    assert "BOOT_B_LEFT=2" in store.read_text()
    selector.mark_bad("B")
    assert selector.variables()["BOOT_ORDER"] == "A B" and selector.boot() == "A"


def test_uboot_selector_reads_the_booted_slot_from_the_kernel_command_line(tmp_path: Path) -> None:
    printenv, setenv, _ = fake_fw_tools(tmp_path)
    cmdline = tmp_path / "cmdline"
    cmdline.write_text("console=ttyS0 root=/dev/mmcblk0p3 rauc.slot=B quiet\n")
    selector = UBootBootSelector(printenv, setenv, cmdline=cmdline)
    assert selector.boot() == "B" and selector.booted() == "B"
    cmdline.write_text("console=ttyS0\n")
    with pytest.raises(BootSelectorError, match=r"no rauc\.slot"):
        selector.booted()


def test_uboot_selector_reports_a_failing_tool(tmp_path: Path) -> None:
    selector = UBootBootSelector(str(tmp_path / "missing-fw_printenv"), "fw_setenv")
    with pytest.raises(BootSelectorError, match="cannot run"):
        selector.load()


def _payload(name: str, data: bytes, target: SlotImageTarget | FileTreeTarget) -> Payload:
    import hashlib

    return Payload(name=name, size=len(data), sha256=hashlib.sha256(data).hexdigest(), target=target)


def test_image_slot_writes_only_its_own_slot(tmp_path: Path) -> None:
    a, b = tmp_path / "a.img", tmp_path / "b.img"
    a.write_bytes(b"old" * 100)
    group = ImageSlotGroup("rootfs", a, b)
    before = group.digest("A")
    data = b"new image" * 50
    payload = _payload("rootfs.img", data, SlotImageTarget(kind="slot-image", slot="rootfs"))
    group.check_space("B", payload)
    writer = group.writer("B", payload)
    writer.write(memoryview(data))
    writer.finish()
    assert b.read_bytes() == data and group.digest("A") == before


def test_tree_slot_unpacks_completely_then_switches_the_link(tmp_path: Path) -> None:
    archive = make_tar(
        tmp_path / "app.tar",
        [(entry("bin/app", mode=0o755), b"new\n"), (entry("bin/run", tarfile.SYMTYPE, link="app"), b"")],
    )
    group = TreeSlotGroup("app", "/opt/app", tmp_path / "apps")
    group.switch("A")
    data = archive.read_bytes()
    payload = _payload("app.tar", data, FileTreeTarget(kind="file-tree", path="/opt/app"))
    writer = group.writer("B", payload)
    writer.write(memoryview(data))
    assert not (group.root / "B" / "bin").exists()  # nothing visible before finish
    writer.finish()
    assert (group.root / "B" / "bin" / "app").read_text() == "new\n"
    assert sorted(p.name for p in group.root.iterdir()) == ["A", "B", "current"]
    assert group.live() == "A"
    group.switch("B")
    assert group.live() == "B" and (group.current / "bin" / "run").read_text() == "new\n"
    assert tree_digest(group.root / "B") == group.digest("B") != group.digest("A")


def test_an_aborted_tree_writer_leaves_nothing(tmp_path: Path) -> None:
    group = TreeSlotGroup("app", "/opt/app", tmp_path / "apps")
    payload = _payload("app.tar", b"x", FileTreeTarget(kind="file-tree", path="/opt/app"))
    writer = group.writer("B", payload)
    writer.write(memoryview(b"partial"))
    writer.abort()
    assert list(group.root.iterdir()) == []


def test_a_failing_slot_write_is_reported(tmp_path: Path) -> None:
    group = ImageSlotGroup("rootfs", tmp_path / "a.img", Path("/dev/full"))  # every write: no space left
    data = b"x" * 8192
    writer = group.writer(
        "B", _payload("rootfs.img", data, SlotImageTarget(kind="slot-image", slot="rootfs"))
    )
    with pytest.raises(SlotError, match="write failed"):
        for _ in range(4):
            writer.write(memoryview(data))
        writer.finish()

"""Independent slot groups: a bundle changes only the groups it carries, each with its own trial, boot selection,
bad sides, installed bundle, release counter and floor."""

from __future__ import annotations

import json
import os
import select
import threading
from pathlib import Path

import pytest

from conftest import BuildBundle, Ecu, fake_fw_tools, ok, run_cli
from sdv.ota.agent.boot import FileBootSelector, UBootBootSelector
from sdv.ota.agent.config import load_agent_config
from sdv.ota.agent.core import UpdateAgent
from sdv.ota.agent.state import AgentRecord, AgentState, BundleRecord, GroupRecord, check_activation
from sdv.ota.errors import BadSlotError, RollbackError

_S = AgentState


def _agent(ecu: Ecu, *, boot: bool = False) -> UpdateAgent:
    return UpdateAgent(load_agent_config(ecu.config), boot=boot)


def _install(agent: UpdateAgent, bundle: Path) -> None:
    agent.receive_file(bundle, chunk_bytes=8192)
    agent.process()


def _slots(ecu: Ecu, *, rootfs_check: list[str] | None = None) -> list[dict[str, object]]:
    rootfs: dict[str, object] = {
        "kind": "image", "name": "rootfs", "a": ecu.image("A").name, "b": ecu.image("B").name,
    }  # fmt: skip
    if rootfs_check is not None:
        rootfs["health_check"] = {"command": rootfs_check}
    return [rootfs, {"kind": "tree", "name": "app", "path": "/opt/app", "root": "apps"}]


def _rootfs_boot(ecu: Ecu) -> FileBootSelector:
    return FileBootSelector(ecu.state_dir / "boot.json")


def _tree_link(ecu: Ecu) -> str:
    return os.readlink(ecu.tree_root / "current")


def test_an_image_that_failed_its_trial_is_never_booted_by_a_later_tree_bundle(
    ecu: Ecu, build_bundle: BuildBundle, payloads: dict[str, Path]
) -> None:
    ecu.write_config(slots=_slots(ecu, rootfs_check=["false"]))
    image_only = build_bundle(name="os", counter=5, files=[payloads["image"]], output="os.sdvota")
    tree_only = build_bundle(name="apps", counter=6, files=[payloads["tree"]], output="apps.sdvota")
    with _agent(ecu) as agent:
        _install(agent, image_only)
        agent.activate()  # the image's own health check fails: it is rolled back
        record = agent.record
        assert record.state is _S.ROLLED_BACK and "slot group rootfs: health check false" in (
            record.failure or ""
        )
        assert record.groups["rootfs"] == GroupRecord(active_slot="A", bad_slots=("B",))
        assert record.groups["app"] == GroupRecord(active_slot="A")  # never switched to its empty side
        assert _tree_link(ecu) == "A"

        _install(agent, tree_only)
        agent.activate()
        assert agent.record.state is _S.VERIFYING
        agent.mark_good()
        record = agent.record
    assert record.state is _S.ACTIVATED
    assert record.groups["app"].active_slot == "B" and _tree_link(ecu) == "B"
    assert record.groups["app"].installed is not None and record.groups["app"].installed.name == "apps"
    assert record.groups["rootfs"].installed is None  # the installed record names only what each group runs
    assert record.groups["rootfs"].bad_slots == ("B",)
    env = _rootfs_boot(ecu).load()
    assert env.order[0] == "A" and env.left("B") == 0 and env.booted == "A"
    with _agent(ecu, boot=True) as rebooted:  # a reboot starts the committed image, never the bad one
        assert rebooted.status().booted_slot == "A"
        assert rebooted.record.groups["app"].active_slot == "B" and _tree_link(ecu) == "B"


def _u_boot_ecu(ecu: Ecu, directory: Path) -> tuple[UBootBootSelector, Path]:
    """Configure the ECU for U-Boot (fake fw tools) with the kernel saying side A runs."""
    printenv, setenv, store = fake_fw_tools(directory)
    cmdline = directory / "cmdline"
    cmdline.write_text("console=ttyS0 rauc.slot=A\n")
    boot = {"selector": "uboot", "fw_printenv": printenv, "fw_setenv": setenv, "cmdline": str(cmdline)}
    ecu.write_config(slots=_slots(ecu), boot=boot)
    return UBootBootSelector(printenv, setenv, cmdline=cmdline), store


def test_a_tree_bundle_on_a_u_boot_ecu_switches_without_touching_the_boot_environment(
    ecu: Ecu, build_bundle: BuildBundle, payloads: dict[str, Path], tmp_path: Path
) -> None:
    selector, store = _u_boot_ecu(ecu, tmp_path)
    with _agent(ecu) as agent:
        before = selector.variables()
        _install(agent, build_bundle(name="apps", counter=6, files=[payloads["tree"]]))
        agent.activate()  # no reboot: only the tree group changes sides
        assert agent.record.state is _S.VERIFYING and _tree_link(ecu) == "B"
        agent.mark_good()
        assert selector.variables() == before
        assert agent.record.groups["rootfs"].active_slot == "A"
    assert not store.exists()  # fw_setenv never ran


def test_right_after_a_u_boot_activation_the_status_shows_the_attempts_the_environment_holds(
    ecu: Ecu, build_bundle: BuildBundle, payloads: dict[str, Path], tmp_path: Path
) -> None:
    selector, _ = _u_boot_ecu(ecu, tmp_path)
    with _agent(ecu) as agent:
        _install(agent, build_bundle(name="os", counter=5, files=[payloads["image"]]))
        agent.activate()  # the next boot starts side B: the agent waits for it
        variables = selector.variables()
        status = agent.status()
    assert status.record.state is _S.ACTIVATING and variables["BOOT_B_LEFT"] == "3"
    assert status.attempts_left == 3
    assert status.groups[0].name == "rootfs" and status.groups[0].attempts_left == 3


def test_counters_are_per_group_and_a_lower_one_is_refused_before_any_payload_byte(
    ecu: Ecu, build_bundle: BuildBundle, payloads: dict[str, Path]
) -> None:
    with _agent(ecu) as agent:
        _install(agent, build_bundle(name="apps", counter=43, files=[payloads["tree"]], output="a43.sdvota"))
        agent.activate()
        agent.mark_good()
        # an apps bundle at 43 does not block a rootfs bundle at 42
        _install(agent, build_bundle(name="os", counter=42, files=[payloads["image"]], output="o42.sdvota"))
        agent.activate()
        agent.mark_good()
        assert {name: group.counter for name, group in agent.record.groups.items()} == {
            "rootfs": 42,
            "app": 43,
        }
        older = build_bundle(name="os", counter=41, files=[payloads["image"]], output="o41.sdvota")
        with pytest.raises(
            RollbackError, match="release counter 41, below the installed 42 of slot group rootfs"
        ):
            agent.receive_file(older)
        assert agent.record.state is _S.ACTIVATED and agent.record.transfer is None
        assert not agent.incoming.exists()  # refused by the header: no payload byte was accepted


def test_the_same_counter_installs_again_only_when_the_bundle_and_the_ecu_allow_it(
    ecu: Ecu, build_bundle: BuildBundle, payloads: dict[str, Path], keys: object
) -> None:
    image = [payloads["image"]]
    repair = build_bundle(name="os", counter=7, files=image, output="repair.sdvota")
    ok("ota", "build", "--name", "os", "--version", "1.7.0", "--release-counter", "7", "--hardware-id", "ecu-a",
       "--payload", payloads["image"], "--reinstall", "-o", repair)  # fmt: skip
    for signer in ("a", "e"):
        ok("ota", "sign", repair, "--key", keys.private(signer))  # type: ignore[attr-defined]
    with _agent(ecu) as agent:
        _install(agent, build_bundle(name="os", counter=7, files=image, output="first.sdvota"))
        agent.activate()
        agent.mark_good()
        with pytest.raises(
            RollbackError, match=r"equal to the installed one of slot group rootfs.*not marked reinstall"
        ):
            agent.receive_file(build_bundle(name="os", counter=7, files=image, output="same.sdvota"))
        _install(agent, repair)  # marked reinstall: a repair at the same counter
        agent.activate()
        agent.mark_good()
        assert agent.record.groups["rootfs"].counter == 7 and agent.record.groups["rootfs"].active_slot == "A"
    ecu.write_config(allow_reinstall=False)
    with _agent(ecu) as agent, pytest.raises(RollbackError, match="re-installs are not allowed on this ECU"):
        agent.receive_file(repair)


def test_a_committed_bundle_raises_the_floor_of_a_group(
    ecu: Ecu, build_bundle: BuildBundle, payloads: dict[str, Path], keys: object
) -> None:
    floors = ecu.root / "floors.sdvota"
    ok("ota", "build", "--name", "apps", "--version", "1.50.0", "--release-counter", "50", "--hardware-id", "ecu-a",
       "--payload", payloads["tree"], "--counter-floor", "rootfs=45", "-o", floors)  # fmt: skip
    for signer in ("a", "e"):
        ok("ota", "sign", floors, "--key", keys.private(signer))  # type: ignore[attr-defined]
    inspected = ok("ota", "inspect", floors)
    assert "counter floors:  rootfs 45" in inspected
    low = build_bundle(name="os", counter=44, files=[payloads["image"]], output="o44.sdvota")
    with _agent(ecu) as agent:
        agent.receive_file(low)  # before the floor: accepted
        agent.cancel()
        _install(agent, floors)
        agent.activate()
        agent.mark_good()
        assert agent.record.groups["rootfs"].floor == 45 and agent.record.groups["rootfs"].counter == 0
        with pytest.raises(RollbackError, match="below the floor 45 of slot group rootfs"):
            agent.receive_file(low)
        agent.receive_file(
            build_bundle(name="os", counter=45, files=[payloads["image"]], output="o45.sdvota")
        )


def test_an_activation_that_would_boot_a_bad_side_is_refused() -> None:
    bundle = BundleRecord(name="os", version="1.0.0", release_counter=3, bundle_sha256="0" * 64)
    record = AgentRecord(
        state=_S.READY, bundle=bundle, groups={"rootfs": GroupRecord(trial_slot="B", bad_slots=("B",))}
    )
    with pytest.raises(BadSlotError, match="slot group rootfs: side B failed its trial"):
        check_activation(record)
    check_activation(record.model_copy(update={"groups": {"rootfs": GroupRecord(trial_slot="B")}}))
    assert GroupRecord(trial_slot="B", bad_slots=("B",)).staged().bad_slots == ()


def test_a_version_1_record_gives_every_group_its_side_and_counter(ecu: Ecu) -> None:
    ecu.state_dir.mkdir()
    installed = {
        "name": "demo",
        "version": "1.7.0",
        "release_counter": 7,
        "bundle_sha256": "1" * 64,
        "payloads": {},
    }
    legacy = {"type": "sdv-ota/agent-state/v1", "state": "activated", "sequence": 9, "active_slot": "B",
              "trial_slot": None, "transfer": None, "bundle": None, "failure": None, "installed": installed}  # fmt: skip
    (ecu.state_dir / "state.json").write_text(json.dumps(legacy))
    (ecu.state_dir / "boot.json").write_text(
        json.dumps({"order": ["B", "A"], "attempts_left": {"A": 0, "B": 3}, "booted": "B"})
    )
    with _agent(ecu, boot=True) as agent:
        groups = agent.record.groups
        assert list(groups) == ["rootfs", "app"]
        assert all(group.active_slot == "B" and group.counter == 7 for group in groups.values())
        assert [view.booted_slot for view in agent.status().groups] == ["B", "B"]
        assert _tree_link(ecu) == "B"


def test_status_answers_while_a_health_check_runs(
    ecu: Ecu, build_bundle: BuildBundle, payloads: dict[str, Path], tmp_path: Path
) -> None:
    started, release = tmp_path / "started", tmp_path / "release"
    os.mkfifo(started)
    os.mkfifo(release)
    check = ["sh", "-c", f'echo running > "{started}"; read answer < "{release}"']
    ecu.write_config(slots=_slots(ecu), health_check={"command": check, "timeout_s": 120})
    reader = os.open(started, os.O_RDONLY | os.O_NONBLOCK)
    with _agent(ecu) as agent:
        _install(agent, build_bundle(name="apps", counter=6, files=[payloads["tree"]]))
        activation = threading.Thread(target=agent.activate)
        activation.start()
        try:
            readable, _, _ = select.select([reader], [], [], 60)
            assert readable, "the health check did not start"
            answered: list[AgentState] = []
            status = threading.Thread(target=lambda: answered.append(agent.status().record.state))
            status.start()
            status.join(30)  # the check waits for the release below: a blocking status never returns first
            assert answered == [_S.VERIFYING]
        finally:
            with open(release, "w") as writer:
                writer.write("go\n")
            activation.join(60)
            os.close(reader)
        assert agent.record.state is _S.VERIFYING


def test_activate_exits_1_when_the_trial_rolled_back(
    ecu: Ecu, build_bundle: BuildBundle, payloads: dict[str, Path]
) -> None:
    ecu.write_config(slots=_slots(ecu, rootfs_check=["sh", "-c", "echo disk check failed >&2; exit 3"]))
    ok(
        "ota",
        "install",
        build_bundle(name="os", counter=5, files=[payloads["image"]]),
        "--config",
        ecu.config,
    )
    result = run_cli("ota", "activate", "--config", ecu.config)
    assert result.code == 1
    assert (
        "rolled-back" in result.out and "the trial failed" in result.err and "disk check failed" in result.err
    )
    shown = ok("ota", "status", "--config", ecu.config)
    assert "group rootfs: active A, running A, bad B" in shown


def test_a_group_the_configuration_no_longer_names_keeps_its_counter_and_is_never_on_trial() -> None:
    record = AgentRecord(groups={"old": GroupRecord(trial_slot="B", counter=9), "rootfs": GroupRecord()})
    moved = record.with_groups(["rootfs", "app"])
    assert list(moved.groups) == ["rootfs", "app", "old"]
    assert moved.groups["old"] == GroupRecord(counter=9)

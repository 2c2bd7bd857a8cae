"""Kept plan directories: recorded, taken once, checked, bounded, cleaned (no Terraform needed)."""

from __future__ import annotations

import json
import stat
import time
from pathlib import Path

from services.executor.plandirs import REUSE_RECORD, KeptPlans, ReuseKey, sha256_text
from services.executor.workspace import ERRORED_STATE

KEY = ReuseKey("runner-a", "1.11.4", ("bucket=b", "key=k"), sha256_text("{}"), sha256_text(""))


def _workdir(root: Path, name: str) -> Path:
    wd = root / name
    (wd / ".terraform" / "providers").mkdir(parents=True)
    (wd / "main.tf").write_text('resource "terraform_data" "x" {}\n')
    (wd / "terraform.tfvars.json").write_text("{}")
    (wd / ".terraform.lock.hcl").write_text("# lock\n")
    (wd / ".terraform" / "terraform.tfstate").write_text('{"backend": {}}')
    (wd / "plan.tfplan").write_bytes(b"PK plan")
    (wd / ".terraform" / "providers" / "p").symlink_to(root)
    return wd


def _kept(kept: KeptPlans, tmp: Path, job: str, key: ReuseKey = KEY) -> None:
    assert kept.set_aside(_workdir(tmp, f"job-{job}"), job, key) is not None
    kept.commit(job, b'{"manifest": 1}')


def test_only_a_committed_plan_is_taken_once_and_checks_clean(tmp_path: Path) -> None:
    kept = KeptPlans(tmp_path / "kept")
    pending = kept.set_aside(_workdir(tmp_path, "job-p1"), "p1", KEY)
    assert pending is not None and pending.name == "p1.pending"
    assert stat.S_IMODE((tmp_path / "kept").stat().st_mode) == 0o700
    assert stat.S_IMODE(pending.stat().st_mode) == 0o700
    # Not usable before its manifest is stored (the plan may still fail to complete).
    assert kept.take("p1", tmp_path, "job-d0") is None
    kept.commit("p1", b'{"manifest": 1}')
    taken = kept.take("p1", tmp_path, "job-d1")
    assert taken is not None and kept.take("p1", tmp_path, "job-d2") is None
    assert KeptPlans.check(taken, "p1", KEY) == ([], b'{"manifest": 1}')
    # Bookkeeping the deploy writes afterwards is not an input.
    (taken / ".alethia-job.json").write_text("{}")
    assert KeptPlans.check(taken, "p1", KEY)[0] == []
    assert kept.take("../p1", tmp_path, "job-d3") is None


def test_any_change_or_another_key_is_refused_naming_it(tmp_path: Path) -> None:
    kept = KeptPlans(tmp_path / "kept")
    for job in ("a", "b", "c", "d"):
        _kept(kept, tmp_path, job)
    wd = kept.take("a", tmp_path, "job-1")
    assert wd is not None
    (wd / "terraform.tfvars.json").write_text("{ }")
    assert KeptPlans.check(wd, "a", KEY)[0] == ["changed since the plan: terraform.tfvars.json"]
    wd = kept.take("b", tmp_path, "job-2")
    assert wd is not None
    (wd / ".terraform" / "providers" / "p").unlink()
    (wd / ".terraform" / "providers" / "p").symlink_to(tmp_path / "elsewhere")
    (wd / "extra.tf").write_text("")
    assert KeptPlans.check(wd, "b", KEY)[0] == ["changed since the plan: .terraform/providers/p, extra.tf"]
    wd = kept.take("c", tmp_path, "job-3")
    assert wd is not None
    other = ReuseKey("runner-b", "1.11.4", ("bucket=b", "key=other"), KEY.tfvars_sha256, "x")
    assert KeptPlans.check(wd, "c", other)[0] == [
        "runner id differs",
        "backend config differs",
        "runner tfvars differs",
    ]
    assert KeptPlans.check(wd, "another-plan", KEY)[0] == ["the record belongs to another plan"]
    wd = kept.take("d", tmp_path, "job-4")
    assert wd is not None
    (wd / REUSE_RECORD).unlink()
    assert KeptPlans.check(wd, "d", KEY)[0][0].startswith("no readable reuse record")


def test_bounded_by_count_and_age_and_cleaned_on_start(tmp_path: Path) -> None:
    kept = KeptPlans(tmp_path / "kept", keep=2, max_age_seconds=100)
    for job in ("old", "mid", "new"):
        _kept(kept, tmp_path, job)
        time.sleep(0.01)  # distinct creation times (ordering only, nothing timed)
    # The count bound: the oldest went when the third was committed.
    assert sorted(p.name for p in kept.root.iterdir()) == ["mid", "new"]
    # The age bound.
    assert sorted(kept.prune(now=time.time() + 101)) == ["mid", "new"]
    assert list(kept.root.iterdir()) == []
    # At start: a pending directory (its runner died before CompleteJob) and stray files go;
    # a directory holding errored.tfstate is never deleted.
    _kept(kept, tmp_path, "fresh")
    kept.set_aside(_workdir(tmp_path, "job-half"), "half", KEY)
    (kept.root / "stray").write_text("x")
    odd = kept.root / "odd"
    odd.mkdir()
    (odd / ERRORED_STATE).write_text(json.dumps({"serial": 1}))
    removed = KeptPlans(kept.root, keep=2, max_age_seconds=100).clean_on_start()
    assert sorted(removed) == ["half.pending", "stray"]
    assert sorted(p.name for p in kept.root.iterdir()) == ["fresh", "odd"]
    # Turned off (keep=0): nothing is kept, what was kept goes (but never errored state).
    off = KeptPlans(kept.root, keep=0)
    off.clean_on_start()
    assert sorted(p.name for p in kept.root.iterdir()) == ["odd"]
    assert off.set_aside(_workdir(tmp_path, "job-x"), "x", KEY) is None


def test_a_discarded_plan_leaves_nothing(tmp_path: Path) -> None:
    kept = KeptPlans(tmp_path / "kept")
    assert kept.set_aside(_workdir(tmp_path, "job-f"), "f", KEY) is not None
    kept.discard("f")
    assert list(kept.root.iterdir()) == []
    assert kept.take("f", tmp_path, "job-g") is None


def test_an_expired_directory_is_never_taken(tmp_path: Path) -> None:
    kept = KeptPlans(tmp_path / "kept", max_age_seconds=100)
    _kept(kept, tmp_path, "old")
    record = kept.root / "old" / REUSE_RECORD
    doc = json.loads(record.read_text())
    record.write_text(json.dumps({**doc, "created": doc["created"] - 101}))
    assert kept.take("old", tmp_path, "job-d") is None
    assert not (kept.root / "old").exists()

"""The Hub workflow of a run (modeling_mer/training/hub_sync.py, hub_transfer.py) against a local fake Hub: background
uploads that never stall training, the newest checkpoint kept, failures reported and retried, nothing
lost; the run state downloaded on a fresh machine byte for byte; push-only and dry-run."""

from __future__ import annotations

import inspect
import json
import shutil
import threading
import time
from pathlib import Path

import huggingface_hub
import pytest
from huggingface_hub.utils import filter_repo_objects

from modeling_mer.training import hub_sync, hub_transfer
from modeling_mer.training.hub_sync import DryRunClient, HubSync, HubSyncError
from modeling_mer.training.hub_transfer import download_run_state, push_run

FINAL_FILES = ["README.md", "config.json", "model.safetensors", "metrics.json", "predictions.csv", "run_args.json"]
REPO = "someone/mer-run"


class FakeHub:
    """A folder per repo standing in for the Hub, behind huggingface_hub's own function names and signatures:
    upload_folder with its allow/ignore/delete filters (one commit each), snapshot_download into a cache."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.commits: list[tuple[str, list[str], list[str]]] = []  # (message, uploaded, deleted)
        self.private: dict[str, bool] = {}
        self.fail_next = 0  # uploads to refuse, as an unreachable Hub would
        self.gate: threading.Event | None = None  # when set: uploads wait for it (a slow network)
        self.started = threading.Event()

    def repo(self, repo_id: str) -> Path:
        return self.root / repo_id.replace("/", "--")

    def files(self, repo_id: str = REPO) -> dict[str, bytes]:
        folder = self.repo(repo_id)
        return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}

    # the three functions, with the real ones' parameters
    def create_repo(self, repo_id: str, **kwargs):
        inspect.signature(huggingface_hub.create_repo).bind(repo_id, **kwargs)
        self.repo(repo_id).mkdir(parents=True, exist_ok=True)
        self.private[repo_id] = kwargs.get("private")
        return f"https://huggingface.co/{repo_id}"

    def upload_folder(self, **kwargs):
        inspect.signature(huggingface_hub.upload_folder).bind(**kwargs)  # only real parameters
        self.started.set()
        if self.gate is not None:
            assert self.gate.wait(30), "the test never released the upload"
        if self.fail_next:
            self.fail_next -= 1
            raise ConnectionError("[Errno 101] Network is unreachable")
        remote = self.repo(kwargs["repo_id"])
        if not remote.is_dir():
            raise FileNotFoundError(f"404 Repository Not Found: {kwargs['repo_id']}")
        source = Path(kwargs["folder_path"])
        names = sorted(p.relative_to(source).as_posix() for p in source.rglob("*") if p.is_file())
        uploaded = list(filter_repo_objects(names, allow_patterns=kwargs.get("allow_patterns"),
                                            ignore_patterns=kwargs.get("ignore_patterns")))
        deleted = []
        if kwargs.get("delete_patterns"):
            present = sorted(p.relative_to(remote).as_posix() for p in remote.rglob("*") if p.is_file())
            for name in filter_repo_objects(present, allow_patterns=kwargs["delete_patterns"]):
                if name not in uploaded and name != ".gitattributes":
                    (remote / name).unlink()
                    deleted.append(name)
        for name in uploaded:
            (remote / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source / name, remote / name)
        for folder in sorted((p for p in remote.rglob("*") if p.is_dir()), reverse=True):
            if not any(folder.iterdir()):
                folder.rmdir()
        self.commits.append((kwargs.get("commit_message") or "", uploaded, deleted))
        return f"https://huggingface.co/{kwargs['repo_id']}/commit/{len(self.commits)}"

    def snapshot_download(self, repo_id: str, **kwargs):
        inspect.signature(huggingface_hub.snapshot_download).bind(repo_id, **kwargs)
        remote = self.repo(repo_id)
        if not remote.is_dir():
            raise huggingface_hub.errors.LocalEntryNotFoundError(f"404 Repository Not Found: {repo_id}")
        snapshot = Path(kwargs["cache_dir"]) / "snapshots" / "abc123"
        names = [n for n in self.files(repo_id)]
        for name in filter_repo_objects(names, allow_patterns=kwargs.get("allow_patterns")):
            (snapshot / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(remote / name, snapshot / name)
        snapshot.mkdir(parents=True, exist_ok=True)
        return str(snapshot)


@pytest.fixture
def hub(tmp_path, monkeypatch) -> FakeHub:
    fake = FakeHub(tmp_path / "hub")
    for name in ("create_repo", "upload_folder", "snapshot_download"):
        monkeypatch.setattr(huggingface_hub, name, getattr(fake, name))
    fake.create_repo(REPO, private=True)
    return fake


# --------------------------------------------------------------------------------------- a run on disk
def make_run(root: Path) -> Path:
    run = root / "run"
    (run / "folds").mkdir(parents=True)
    (run / "run_args.json").write_text(json.dumps({"model": "tiny", "seed": 42}))
    return run


def add_fold(run: Path, index: int) -> Path:
    path = run / "folds" / f"fold_{index:03d}.csv"
    path.write_text(f"fold,subject,prediction\n{index},s{index},1\n")
    return path


def add_checkpoint(run: Path, number: int, keep: int = 2) -> Path:
    """As the runner writes them: state files, progress.json, rename into place, rotation to `keep`."""
    folder = run / "checkpoints" / "mer-run" / "checkpoints"
    tmp = folder / f".checkpoint_{number}.incomplete"
    tmp.mkdir(parents=True)
    (tmp / "model.safetensors").write_bytes(bytes([number]) * 4096)
    (tmp / "optimizer.bin").write_bytes(bytes([number + 1]) * 2048)
    (tmp / "random_states_0.pkl").write_bytes(b"rng%d" % number)
    (tmp / "progress.json").write_text(json.dumps({"fold": "fold_0", "epoch": number}))
    final = folder / f"checkpoint_{number}"
    tmp.rename(final)
    for old in sorted(folder.glob("checkpoint_*"), key=lambda p: int(p.name.split("_")[1]))[:-keep]:
        shutil.rmtree(old)
    return final


def local_state(run: Path) -> dict[str, bytes]:
    """What a resumed run needs: settings, fold files, the newest checkpoint."""
    newest = hub_transfer.latest_checkpoints(run)
    files = {}
    for path in sorted(run.rglob("*")):
        name = path.relative_to(run).as_posix()
        if not path.is_file() or name.startswith(".hub_staging"):
            continue
        if name.startswith("checkpoints/") and not any(path.is_relative_to(c) for c in newest):
            continue
        if name.startswith(("folds/", "checkpoints/")) or name in ("run_args.json", "skipped_clips.json"):
            files[name] = path.read_bytes()
    return files


# ---------------------------------------------------------------------------------------------- tests
def test_checkpoint_strategy_round_trip(tmp_path, hub):
    run = make_run(tmp_path)
    sync = HubSync(run, REPO, "checkpoint", report=pytest.fail)
    sync.saved_checkpoint(add_checkpoint(run, 0))
    sync.saved_file(add_fold(run, 0))
    for n in (1, 2, 3):
        sync.saved_checkpoint(add_checkpoint(run, n))
    assert sync.close() == sync.uploaded and sync.uploaded
    remote = hub.files()
    assert sorted(n for n in remote if n.startswith("checkpoints/")) == [
        f"checkpoints/mer-run/checkpoints/checkpoint_3/{f}"
        for f in ("model.safetensors", "optimizer.bin", "progress.json", "random_states_0.pkl")
    ]  # only the newest checkpoint stays on the Hub
    assert remote == local_state(run)
    assert not (run / ".hub_staging").exists()
    fresh = tmp_path / "elsewhere" / "run"
    names = download_run_state(REPO, fresh)
    assert {n: (fresh / n).read_bytes() for n in names} == local_state(run)  # byte for byte
    assert sorted(p.relative_to(fresh).as_posix() for p in fresh.rglob("*") if p.is_file()) == sorted(names)


def test_saves_never_wait_for_the_network(tmp_path, hub):
    """While an upload hangs, saves return at once; what arrives meanwhile is one next commit, with only
    the newest checkpoint, and a checkpoint rotated away locally is still uploaded whole."""
    run = make_run(tmp_path)
    hub.gate = threading.Event()
    sync = HubSync(run, REPO, "checkpoint", report=pytest.fail)
    first = add_checkpoint(run, 0)
    sync.saved_checkpoint(first)
    assert hub.started.wait(10)  # the upload of checkpoint_0 is under way and blocked
    took = []
    for n in (1, 2, 3):
        start = time.perf_counter()
        sync.saved_checkpoint(add_checkpoint(run, n))
        sync.saved_file(add_fold(run, n))
        took.append(time.perf_counter() - start)
    assert not first.exists()  # rotated away while its upload was blocked
    assert max(took) < 0.5, took
    hub.gate.set()
    sync.close(timeout=30)
    assert [c[0] for c in hub.commits] == [
        "Training in progress: checkpoint_0",
        "Training in progress: fold_001.csv, fold_002.csv, checkpoint_3, fold_003.csv",
    ]
    assert "checkpoints/mer-run/checkpoints/checkpoint_0/model.safetensors" in hub.commits[0][1]
    assert hub.commits[1][2] == [f"checkpoints/mer-run/checkpoints/checkpoint_0/{f}" for f in
                                 ("model.safetensors", "optimizer.bin", "progress.json", "random_states_0.pkl")]
    assert hub.files() == local_state(run)


def test_a_failed_upload_is_reported_and_retried(tmp_path, hub):
    run = make_run(tmp_path)
    lines = []
    sync = HubSync(run, REPO, "checkpoint", report=lines.append, retry_after=600)
    hub.fail_next = 1
    sync.saved_file(add_fold(run, 0))
    deadline = time.monotonic() + 10
    while not lines and time.monotonic() < deadline:
        time.sleep(0.05)
    assert lines == [
        f"hub: upload of fold_000.csv to {REPO} failed (ConnectionError: [Errno 101] Network is unreachable); "
        "kept for the next attempt"
    ]
    sync.saved_checkpoint(add_checkpoint(run, 0))  # the next save retries what failed, in one commit
    sync.close(timeout=30)
    assert len(hub.commits) == 1 and "folds/fold_000.csv" in hub.commits[0][1]
    assert hub.files() == local_state(run)


def test_what_never_reaches_the_hub_is_named_at_the_end(tmp_path, hub):
    run = make_run(tmp_path)
    lines = []
    sync = HubSync(run, REPO, "every_save", report=lines.append, retry_after=0.05)
    hub.fail_next = 10**6
    sync.saved_file(add_fold(run, 0))
    sync.push_final(FINAL_FILES)
    start = time.monotonic()
    with pytest.raises(HubSyncError) as error:
        sync.close(timeout=60)
    assert time.monotonic() - start < 20
    message = str(error.value)
    assert "\n" not in message
    assert message.startswith(f"hub: not uploaded to {REPO}: fold_000.csv; the final model, card and results (hub: upload")
    assert f"push them with `python train.py --push_only --output_dir {run} --hub_model_id {REPO} --hub_strategy every_save`" in message
    assert hub.files() == {} and (run / "folds" / "fold_000.csv").is_file()
    assert all(line.startswith("hub: upload of fold_000.csv") and "\n" not in line for line in lines)


@pytest.mark.parametrize(
    "strategy, expected",
    [
        ("end", set()),
        ("every_save", {"run_args.json", "folds/fold_000.csv", "folds/fold_001.csv"}),
        ("checkpoint", {"run_args.json", "folds/fold_000.csv", "folds/fold_001.csv",
                        *(f"checkpoints/mer-run/checkpoints/checkpoint_1/{f}" for f in
                          ("model.safetensors", "optimizer.bin", "progress.json", "random_states_0.pkl"))}),
    ],
)
def test_strategies(tmp_path, hub, strategy, expected):
    run = make_run(tmp_path)
    sync = HubSync(run, REPO, strategy, report=pytest.fail)
    for n in (0, 1):
        sync.saved_checkpoint(add_checkpoint(run, n))
        sync.saved_file(add_fold(run, n))
    if strategy == "end":
        assert sync._thread is None and hub.commits == []  # nothing leaves before the end
    (run / "metrics.json").write_text("{}")
    (run / "model.safetensors").write_bytes(b"final")
    sync.push_final(FINAL_FILES)
    sync.close(timeout=30)
    assert set(hub.files()) == expected | {"run_args.json", "metrics.json", "model.safetensors"}
    assert hub.commits[-1][0] == "Upload micro-expression model, card, metrics and predictions"
    assert sorted(hub.commits[-1][1]) == ["metrics.json", "model.safetensors", "run_args.json"]


def test_unknown_strategy():
    with pytest.raises(ValueError, match="--hub_strategy 'all_checkpoints': choose one of end, every_save, checkpoint"):
        HubSync(Path("run"), REPO, "all_checkpoints")


def finished_run(tmp_path: Path) -> Path:
    run = make_run(tmp_path)
    for n in (0, 1):
        add_fold(run, n)
        add_checkpoint(run, n)
    for name in ("README.md", "config.json", "model.safetensors", "metrics.json", "predictions.csv", "final_model.json"):
        (run / name).write_text(name)
    (run / "logs").mkdir()
    (run / "logs" / "events.out").write_text("tensorboard")
    return run


def test_push_only_a_finished_run(tmp_path, hub):
    run = finished_run(tmp_path)
    commits = push_run(run, "someone/new-repo", FINAL_FILES, "every_save", report=pytest.fail)
    assert hub.private["someone/new-repo"] is True  # private unless asked
    assert commits == ["fold_000.csv, fold_001.csv", "final model"]
    assert set(hub.files("someone/new-repo")) == {
        "README.md", "config.json", "model.safetensors", "metrics.json", "predictions.csv", "run_args.json",
        "folds/fold_000.csv", "folds/fold_001.csv",
    }  # never checkpoints (every_save), logs or final_model.json


def test_push_only_refuses_an_unfinished_run_but_checkpoint_pushes_its_state(tmp_path, hub):
    run = finished_run(tmp_path)
    (run / "final_model.json").unlink()
    (run / "metrics.json").unlink()
    with pytest.raises(HubSyncError, match="the run has not finished .* --hub_strategy checkpoint"):
        push_run(run, REPO, FINAL_FILES, "end", report=pytest.fail)
    assert hub.commits == []
    assert push_run(run, REPO, FINAL_FILES, "checkpoint", report=pytest.fail) == ["fold_000.csv, fold_001.csv, checkpoint_1"]
    fresh = tmp_path / "fresh"
    download_run_state(REPO, fresh)
    assert local_state(fresh) == local_state(run)
    with pytest.raises(HubSyncError, match="no run there"):
        push_run(tmp_path / "nothing", REPO, FINAL_FILES, report=pytest.fail)


def test_dry_run_lists_and_uploads_nothing(tmp_path, hub):
    run = finished_run(tmp_path)
    lines = []
    client = DryRunClient(lines.append)
    push_run(run, "someone/other", FINAL_FILES, "checkpoint", client=client, report=pytest.fail)
    assert not hub.repo("someone/other").exists() and hub.commits == []
    assert lines[0] == "hub (dry run): would create the private repo someone/other if missing"
    assert lines[1].startswith("hub (dry run): would upload 7 file(s), ")
    assert "would delete remote files matching ['checkpoints/**']: checkpoints/mer-run/checkpoints/checkpoint_1/model.safetensors" in lines[1]
    size = sum((run / name).stat().st_size for name in FINAL_FILES)
    assert lines[2] == (
        f"hub (dry run): would upload 6 file(s), {size} B, to someone/other (Upload micro-expression model, card, "
        "metrics and predictions): README.md, config.json, metrics.json, model.safetensors, predictions.csv, run_args.json"
    )
    assert client.uploads[1] == sorted(FINAL_FILES)
    assert not (run / ".hub_staging").exists()


def test_resume_from_hub_refusals(tmp_path, hub):
    run = finished_run(tmp_path)
    with pytest.raises(HubSyncError, match=f"--resume_from_hub {REPO}: {run} already holds a run; continue it with --resume"):
        download_run_state(REPO, run)
    with pytest.raises(HubSyncError, match="the repo holds no run state .* --hub_strategy checkpoint"):
        download_run_state(REPO, tmp_path / "a")
    with pytest.raises(HubSyncError, match=r"cannot download the run state \(LocalEntryNotFoundError: 404 Repository Not Found: nobody/none\)"):
        download_run_state("nobody/none", tmp_path / "b")
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_a_killed_runs_staging_is_not_uploaded(tmp_path, hub):
    run = finished_run(tmp_path)
    leftover = run / ".hub_staging" / "commit_00001" / "folds" / "fold_009.csv"
    leftover.parent.mkdir(parents=True)
    leftover.write_text("half")
    sync = HubSync(run, REPO, "every_save", report=pytest.fail)
    assert not leftover.exists()
    sync.saved_file(run / "folds" / "fold_000.csv")
    sync.close()
    assert set(hub.files()) == {"run_args.json", "folds/fold_000.csv"}


def test_the_runners_listener_and_summary(tmp_path, hub):
    run = make_run(tmp_path)
    sync = HubSync.for_run(run, REPO, "checkpoint", report=pytest.fail)
    assert isinstance(sync.client, hub_sync.HubClient) and not isinstance(sync.client, DryRunClient)
    sync.on_saved("checkpoint", add_checkpoint(run, 0))
    sync.on_saved("fold", add_fold(run, 0))
    sync.close()
    assert sync.summary().startswith("hub: ") and "commit(s) to someone/mer-run, the last: " in sync.summary()
    assert hub.files() == local_state(run)
    lines = []
    dry = HubSync.for_run(run, REPO, "every_save", dry_run=True, report=lines.append)
    dry.on_saved("fold", run / "folds" / "fold_000.csv")
    dry.close()
    assert dry.summary().endswith("(dry run: nothing was uploaded)") and lines[0].startswith("hub (dry run): would upload 2 file(s)")


def test_push_only_without_the_hub_is_one_line(tmp_path, hub, monkeypatch):
    run = finished_run(tmp_path)

    def offline(*args, **kwargs):
        raise huggingface_hub.errors.OfflineModeIsEnabled("Cannot reach https://huggingface.co: offline mode is enabled.")

    monkeypatch.setattr(huggingface_hub, "create_repo", offline)
    with pytest.raises(HubSyncError) as error:
        push_run(run, REPO, FINAL_FILES, report=pytest.fail)
    assert str(error.value) == (
        f"--push_only: cannot reach or create the Hub repo {REPO} (OfflineModeIsEnabled: Cannot reach "
        "https://huggingface.co: offline mode is enabled.)"
    )


def test_push_only_with_a_runs_settings(tmp_path, hub):
    from types import SimpleNamespace

    from modeling_mer.evaluation.reporting import HUB_FILES

    run = finished_run(tmp_path)
    lines = []
    settings = SimpleNamespace(output_dir=str(run), hub_model_id="someone/public", hub_strategy="end", hub_public=True,
                               dry_run=True)
    assert hub_transfer.push_only(settings, report=lines.append) == ["final model"]
    assert lines[-1] == f"hub: {run} pushed to someone/public in 1 commit(s) (dry run: nothing was uploaded)"
    assert not hub.repo("someone/public").exists()
    settings.dry_run = False
    hub_transfer.push_only(settings, report=lines.append)
    assert hub.private["someone/public"] is False  # --hub_public
    assert set(hub.files("someone/public")) == {n for n, _ in hub_sync.matching_files(run, HUB_FILES, ["*/*"])} == {
        "README.md", "config.json", "model.safetensors", "metrics.json", "predictions.csv", "run_args.json"}


# --------------------------------------------------------------------------- train.py end to end (fake Hub)
@pytest.fixture
def hub_for_train(hub, monkeypatch):
    """The fake Hub behind train.py's own checks too (a token, who am I, online)."""
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(huggingface_hub, "get_token", lambda: "hf_fake_token")
    monkeypatch.setattr(huggingface_hub, "whoami", lambda token=None: {"name": "someone"})
    return hub


@pytest.mark.slow
def test_a_killed_run_resumes_from_the_hub_on_an_empty_folder(tmp_path, hub_for_train, monkeypatch, capsys):
    """LOSO over 3 subjects (2 epochs each, then the final model) stopped after 5 epochs with --hub_strategy
    checkpoint; its machine is gone; --resume_from_hub on an empty folder ends byte-identical to a run
    that was never interrupted."""
    from test_train import FAST, tiny_synthetic

    import train
    from modeling_mer.evaluation.reporting import HUB_FILES
    from modeling_mer.training import recognition

    monkeypatch.setattr(recognition, "load_mer_dataset", tiny_synthetic)
    hub = hub_for_train
    args = [*FAST, "--seed", "3", "--cache_dir", str(tmp_path / "cache")]
    hub_args = ["--push_to_hub", "--hub_model_id", REPO, "--hub_strategy", "checkpoint"]
    straight = tmp_path / "straight"
    reference = train.main([*args, "--output_dir", str(straight)])
    first = tmp_path / "machine1"
    assert train.main([*args, *hub_args, "--output_dir", str(first), "--stop_after", "5"]) is None
    pushed = hub.files()
    assert {"run_args.json", "folds/fold_000.csv", "folds/fold_001.csv"} <= set(pushed)
    assert "folds/fold_002.csv" not in pushed and "model.safetensors" not in pushed
    newest = hub_transfer.latest_checkpoints(first)
    assert len(newest) == 1 and {n for n in pushed if n.startswith("checkpoints/")} == {
        p.relative_to(first).as_posix() for p in newest[0].rglob("*") if p.is_file()}
    shutil.rmtree(first)  # the machine is gone: only the Hub holds the run
    second = tmp_path / "machine2"
    capsys.readouterr()
    resumed = train.main([*args, *hub_args, "--output_dir", str(second), "--resume_from_hub", REPO])
    console = capsys.readouterr().out
    assert f"Hub: the run state of {REPO} (" in console
    assert "fold 1/3 (synth_s01): kept from the previous run" in console and "fold 2/3 (synth_s02): kept" in console
    assert f"resumed 2 from {newest[0].name} (epoch 1 of 2)" in console  # fold 3 goes on from its checkpoint
    same = ["model.safetensors", "config.json", "preprocessor_config.json", "predictions.csv", "final_model.json",
            "folds/fold_000.csv", "folds/fold_001.csv", "folds/fold_002.csv"]
    for name in same:
        assert (second / name).read_bytes() == (straight / name).read_bytes(), f"{name} differs after the move"
    assert {k: v for k, v in resumed.items() if k != "seconds"} == {k: v for k, v in reference.items() if k != "seconds"}
    remote = hub.files()
    for name in ("model.safetensors", "config.json", "predictions.csv", "metrics.json", "README.md"):
        assert remote[name] == (second / name).read_bytes()
    assert not (second / ".hub_staging").exists()
    assert set(HUB_FILES) >= {"model.safetensors"}


def test_push_only_and_dry_run_from_the_command_line(tmp_path, hub_for_train, monkeypatch, capsys):
    import train

    hub = hub_for_train

    run = finished_run(tmp_path)
    (run / "run_args.json").write_text(json.dumps({"output_dir": str(run)}))
    train.main(["--push_only", "--output_dir", str(run), "--hub_model_id", "someone/pushed", "--dry_run"])
    out = capsys.readouterr().out
    assert "hub (dry run): would upload" in out and not hub.repo("someone/pushed").exists()
    train.main(["--push_only", "--output_dir", str(run), "--hub_model_id", "someone/pushed"])
    assert {"model.safetensors", "README.md", "metrics.json"} <= set(hub.files("someone/pushed"))


def test_a_dry_run_trains_needs_no_token_and_uploads_nothing(tmp_path, hub_for_train, monkeypatch, capsys):
    from test_train import FAST, tiny_synthetic

    import train
    from modeling_mer.training import recognition

    monkeypatch.setattr(recognition, "load_mer_dataset", tiny_synthetic)
    monkeypatch.setattr(huggingface_hub, "get_token", lambda: None)
    out = tmp_path / "dry"
    metrics = train.main([*FAST, "--epochs", "1", "--output_dir", str(out), "--push_to_hub", "--hub_model_id",
                          "someone/dry", "--hub_strategy", "every_save", "--dry_run"])
    assert metrics is not None and not hub_for_train.repo("someone/dry").exists()
    console = capsys.readouterr().out
    folds = [line for line in console.splitlines() if line.startswith("hub (dry run): would upload") and "fold_" in line]
    assert len(folds) >= 1 and "folds/fold_000.csv" in folds[0]
    final = [line for line in console.splitlines() if "Upload micro-expression model" in line]
    assert len(final) == 1 and "model.safetensors" in final[0] and "checkpoints/" not in final[0]
    assert "hub: " in console and "(dry run: nothing was uploaded)" in console

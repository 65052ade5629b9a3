"""`pez ui`'s files and fields, through the server as a browser or a script reaches it (HTTP, logged in):

- a file the page hands out (a result, an upload) goes only to the user it was handed to; a file another server
  left in Gradio's temp folder is served to nobody; Gradio's copies live in a folder of this process only;
- a field sent through the raw API as a non-finite number (``Infinity``, ``1e400``, ``NaN``) is one message naming
  the field, never Gradio's nameless error;
- readable mode runs the steps asked for, and says what it did when none were asked."""

import json
import os
import secrets
import shutil
import stat
import tempfile
from pathlib import Path

import httpx
import pytest

pytest.importorskip("gradio")

from tests.test_ui import SENTENCE, free_port, login  # noqa: E402

USERS = [("ann", "pw1"), ("bo", "pw2")]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """``pez ui --auth ann:pw1 --auth bo:pw2``, and a logged-in HTTP client per user."""
    from pez.ui import UIOptions, launch_app

    runs = tmp_path_factory.mktemp("uiruns")
    app = launch_app(UIOptions(device="cpu", runs=str(runs)), port=free_port(), auth=USERS, prevent_thread_lock=True,
                     quiet=True)  # fmt: skip
    clients = {user: login(app.local_url, user, password) for user, password in USERS}
    yield app, clients
    for client in clients.values():
        client.close()
    app.close()


def call(http: httpx.Client, api: str, body: str) -> tuple[str, object]:
    """POST a raw JSON body to ``/gradio_api/call/API``, then read its event stream: (event, data) of the end."""
    r = http.post(f"gradio_api/call/{api}", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 200, r.text
    event = data = None
    with http.stream("GET", f"gradio_api/call/{api}/{r.json()['event_id']}", timeout=300) as stream:
        for line in stream.iter_lines():
            if line.startswith("event:"):
                event = line.split(":", 1)[1].strip()
            elif line.startswith("data:") and event in ("complete", "error"):
                data = json.loads(line.split(":", 1)[1])
    return event, data


def distill(http: httpx.Client, steps="2", seed="0") -> dict:
    """Run the text tab's API as a script would; the result file's FileData (path and URL)."""
    event, data = call(http, "distill", f'{{"data": [{json.dumps(SENTENCE)}, "minilm", 4, {steps}, {seed}, 0]}}')
    assert event == "complete", data
    return data[2]


def file_url(path: str) -> str:
    return f"gradio_api/file={path}"


def test_a_result_file_goes_only_to_the_user_it_was_handed_to(served):
    app, http = served
    ann_file = distill(http["ann"])
    url = file_url(ann_file["path"])
    mine = http["ann"].get(url)
    assert mine.status_code == 200 and json.loads(mine.content)["model"] == "minilm"
    assert http["bo"].get(url).status_code == 403  # bo is logged in, and still may not read ann's result
    assert http["bo"].head(url).status_code == 403
    assert httpx.get(f"{app.local_url.rstrip('/')}/{url}").status_code in (401, 403)  # nor anyone not logged in
    bo_file = distill(http["bo"])
    assert http["bo"].get(file_url(bo_file["path"])).status_code == 200
    assert http["ann"].get(file_url(bo_file["path"])).status_code == 403


def test_the_older_file_route_is_checked_the_same_way(served):
    """``/gradio_api/file/PATH`` (Gradio's older route) serves what ``/file=`` does: it must not skip the check."""
    app, http = served
    ann_file = distill(http["ann"])
    (run,) = [p for p in (app.pez_context.store.root / "user-ann").glob("*.json") if p.name == ann_file["orig_name"]]
    for path in (ann_file["path"], str(run)):
        assert http["bo"].get(f"gradio_api/file/{path}").status_code == 403
        assert http["ann"].get(f"gradio_api/file/{path}").status_code == 200


def test_an_upload_goes_back_only_to_its_uploader_and_cannot_be_passed_as_anothers_input(served, astronaut_png):
    app, http = served
    with open(astronaut_png, "rb") as f:
        r = http["ann"].post("gradio_api/upload", files={"files": ("ann.png", f, "image/png")})
    assert r.status_code == 200
    (path,) = r.json()
    assert http["ann"].get(file_url(path)).status_code == 200  # the page's preview of her own upload
    assert http["bo"].get(file_url(path)).status_code == 403
    folder, rest = os.path.split(os.path.dirname(path))
    for written in (path, f"{folder}/./{rest}/{os.path.basename(path)}", f"{folder}/{rest}/../{rest}/ann.png"):
        image = {"path": written, "meta": {"_type": "gradio.FileData"}}
        body = json.dumps({"data": [[image], "", [], "", "ViT-B-32/random", 4, 2, 1, "pez", 0, 0]})
        for kind in ({"content-type": "application/json"}, {}):  # FastAPI reads a body without a type as JSON
            r = http["bo"].post("gradio_api/call/invert", content=body, headers=kind)
            assert r.status_code == 403, written  # bo cannot have the server read ann's upload for him


def test_a_file_another_server_left_in_a_gradio_temp_folder_is_not_served(served):
    from gradio.utils import get_upload_folder

    app, http = served
    left = []
    for folder in {get_upload_folder(), os.path.join(tempfile.gettempdir(), "gradio")}:
        path = Path(folder) / secrets.token_hex(32) / "20260101-000000-distill-abcdef.json"
        path.parent.mkdir(parents=True)
        path.write_text('{"text": "left by another server"}')
        left.append(path)
    try:
        for path in left:
            for user in ("ann", "bo"):
                assert http[user].get(file_url(path)).status_code == 403
    finally:
        for path in left:
            path.unlink()
            path.parent.rmdir()


def test_gradio_copies_live_in_a_folder_of_this_process_only(served):
    from pez.ui.app import private_temp

    _, http = served
    handed = Path(distill(http["ann"])["path"])
    folder = private_temp()
    assert handed.is_relative_to(folder) and not handed.is_relative_to(Path(tempfile.gettempdir()) / "gradio")
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700


def test_without_auth_a_left_file_is_refused_and_a_handed_one_served(tmp_path):
    """One user (no ``--auth``): what this server handed out is served; what it did not hand out is not."""
    from gradio.utils import get_upload_folder

    from pez.ui import UIOptions, launch_app

    app = launch_app(UIOptions(device="cpu", runs=str(tmp_path / "runs")), port=free_port(), prevent_thread_lock=True,
                     quiet=True)  # fmt: skip
    left = Path(get_upload_folder()) / secrets.token_hex(32) / "left.json"
    try:
        http = httpx.Client(base_url=app.local_url, timeout=300)
        assert http.get(file_url(distill(http)["path"])).status_code == 200
        left.parent.mkdir(parents=True)
        left.write_text("{}")
        assert http.get(file_url(left)).status_code == 403
    finally:
        app.close()
        left.unlink(missing_ok=True)


@pytest.mark.parametrize(
    "steps, seed, message",
    [
        ("Infinity", "0", "Steps must be a whole number from 1 to 100000, got inf"),
        ("-Infinity", "0", "Steps must be a whole number from 1 to 100000, got -inf"),
        ("NaN", "0", "Steps must be a whole number from 1 to 100000, got nan"),
        ("2", "1e400", "Seed must be a whole number from 0 to 4294967295, got inf"),
    ],
)
def test_a_non_finite_field_through_the_raw_api_is_one_message_naming_it(served, steps, seed, message):
    _, http = served
    event, data = call(http["ann"], "distill", f'{{"data": [{json.dumps(SENTENCE)}, "minilm", 4, {steps}, {seed}, 0]}}')
    assert event == "error" and data["error"] is not None and message in data["error"], data
    assert "\n" not in data["error"].strip()
    assert distill(http["ann"])["path"]  # still serving


def test_every_number_field_of_the_api_names_itself_when_non_finite(served):
    _, http = served
    task = ["movie-reviews", None, "{prompt} {text} It was", "negative,positive", "", "smollm2", 3, 1, 0, "pez", 4,
            4, 8, 0.0, False, "", 0]  # fmt: skip
    compare = [SENTENCE, [], "minilm", "", None, "", "", ["pez"], 1, 3, "steps", 4]
    cases = [
        ("discover", task, 10, "Examples per step must be a whole number from 1 to 256"),
        ("discover", task, 13, "the fluency weight must be a number >= 0"),
        ("compare", compare, 8, "Seeds must be a whole number from 1 to 20"),
        ("compare", compare, 9, "Budget per run (steps) must be a whole number from 1 to 100000"),
        ("discover", task, 16, "Seconds budget must be a positive, finite number of seconds"),
    ]
    for api, data, index, message in cases:
        sent = json.dumps({"data": [*data[:index], "__X__", *data[index + 1 :]]}).replace('"__X__"', "Infinity")
        event, answer = call(http["ann"], api, sent)
        assert event == "error" and message in (answer["error"] or ""), (api, index, answer)


@pytest.mark.slow
def test_readable_mode_on_the_page_runs_the_steps_asked_for(tmp_path):
    """The page ran 6 steps when 3 were asked (readable mode sized its own search whatever the Steps field held): the
    Steps asked for reach readable mode (its last stage, as ``--steps`` does on the command line), an empty field
    lets it choose, and the status line says what each stage ran."""
    from pez.ui.common import Context, UIOptions
    from pez.ui.panel import search_status
    from pez.ui.text_tab import distill as distill_job

    ctx = Context(UIOptions(device="cpu", runs=str(tmp_path)))
    res, path = distill_job(ctx, SENTENCE, "minilm", 2, 3, 0, readable=True)
    assert res.config["steps"] == 3 and res.steps_done <= 3
    line = search_status(res, path)
    assert f"after {res.steps_done} steps" in line and f"then {res.steps_done} of at most 3 steps" in line
    res, path = distill_job(ctx, SENTENCE, "minilm", 2, None, 0, readable=True)  # the field left empty
    assert f"then {res.steps_done} of at most {res.config['steps']} steps" in search_status(res, path)


def test_the_temp_folder_of_a_server_that_ended_without_cleanup_is_removed_by_the_next(tmp_path, monkeypatch):
    """A server stopped by SIGTERM skips its exit handlers and leaves its temp folder; the next one removes the
    folders of this user's servers that are gone, and only those."""
    import subprocess
    import sys

    from pez.ui import app as ui_app

    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead = tmp_path / f"pez-ui-{gone.stdout.strip()}-abcd"
    live = tmp_path / f"pez-ui-{os.getpid()}-efgh"
    for folder in (dead, live):
        (folder / "x").mkdir(parents=True)
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path))
    fresh = ui_app.private_temp.__wrapped__()  # a new server's start, without replacing this process's folder
    try:
        assert not dead.exists() and live.exists() and fresh.parent == tmp_path.resolve()
    finally:
        shutil.rmtree(fresh, ignore_errors=True)

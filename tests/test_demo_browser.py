"""The demo in a real browser: a Space written by `mer-demo --write-space` for a tiny random model is
started on 127.0.0.1 (its own `python app.py`, as a Space runs it), headless Chromium (Debian's
`chromium` + `chromium-driver`, driven by Selenium) uploads a generated clip, presses Analyse, and the
page must show the label, the probability of every class and the explanation figure; a text file posing
as a video must get a readable sentence, not a traceback.

The screenshot goes to tmp_path; with MER_DEMO_SCREENSHOT=PATH it is also copied to PATH
(`MER_DEMO_SCREENSHOT=bench/results/demo_page.png python3 -m pytest tests/test_demo_browser.py` refreshes
the one kept in the repository). Skipped only where chromium or chromedriver is absent (.ci/run installs
them)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

pytest.importorskip("gradio", reason="the demo extra (gradio) is not installed: pip install -e '.[demo]'")
webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (dev extra)")

from selenium.common.exceptions import TimeoutException  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402
from test_demo import LABELS, face_clip, save_tiny_model, write_mp4  # noqa: E402

from modeling_mer.cli import demo  # noqa: E402
from modeling_mer.cli.predict import load_model, load_processor, predict  # noqa: E402

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
pytestmark = pytest.mark.skipif(
    not (os.access(CHROMIUM, os.X_OK) and os.access(CHROMEDRIVER, os.X_OK)),
    reason="Debian's chromium and chromium-driver are not installed (apt-get install -y chromium chromium-driver; "
    ".ci/run installs them)",
)
START_TIMEOUT = 180  # s for the Space's interpreter to import torch and gradio on a loaded machine
WAIT = 60  # s for an upload or an analysis to show


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_server(url: str, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"the Space's app.py exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.5)
    pytest.fail(f"the Space's app.py did not answer on {url} within {START_TIMEOUT} s:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """The written Space, served by its own app.py on a free port of 127.0.0.1."""
    root = tmp_path_factory.mktemp("browser")
    model = save_tiny_model(root / "model")
    clip = write_mp4(root / "clip.mp4", face_clip())
    space = root / "space"
    demo.write_space(space, str(model), title="Micro-expression demo")
    port = free_port()
    log = root / "server.log"
    env = {
        **os.environ,
        "GRADIO_SERVER_NAME": "127.0.0.1",
        "GRADIO_SERVER_PORT": str(port),
        "GRADIO_ANALYTICS_ENABLED": "False",
        "GRADIO_TEMP_DIR": str(root / "gradio"),
        "HF_HUB_OFFLINE": "1",
        "PYTHONUNBUFFERED": "1",
    }
    with log.open("w") as out:
        process = subprocess.Popen([sys.executable, "app.py"], cwd=space, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_for_server(f"http://127.0.0.1:{port}/", process, log)
        yield {"url": f"http://127.0.0.1:{port}/", "root": root, "model": model, "clip": clip, "log": log}
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def browser(site):
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
        f"--user-data-dir={site['root'] / 'chromium-profile'}", "--window-size=1400,1350",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(WAIT)
    try:
        yield driver
    finally:
        driver.quit()


def upload_and_analyse(driver, url: str, video: Path) -> str:
    """Open the page, upload `video`, press Analyse; returns the status text once the analysis answered."""
    driver.get(url)
    wait = WebDriverWait(driver, WAIT)
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#mer-video input[type=file]"))
    driver.find_element(By.CSS_SELECTOR, "#mer-video input[type=file]").send_keys(str(video))
    # the upload is done when the component leaves its drop zone (a player, or an error for a non-video)
    wait.until(lambda d: not d.find_elements(By.CSS_SELECTOR, "#mer-video input[type=file]")
               or d.find_elements(By.CSS_SELECTOR, "#mer-video video"))
    driver.find_element(By.CSS_SELECTOR, "#mer-analyse").click()
    status = driver.find_element(By.CSS_SELECTOR, "#mer-status")
    try:
        wait.until(lambda d: "(p = " in status.text or "Cannot analyse" in status.text or "went wrong" in status.text)
    except TimeoutException:
        pytest.fail(f"no answer on the page within {WAIT} s; the page says: {driver.find_element(By.TAG_NAME, 'body').text[:2000]}")
    return status.text


def test_page_in_a_real_browser(site, browser, tmp_path):
    model = load_model(str(site["model"]), explainable=True)
    processor, _ = load_processor(str(site["model"]), model, {})
    expected = predict(str(site["clip"]), model, processor, explain_path=tmp_path / "expected.png")

    status = upload_and_analyse(browser, site["url"], site["clip"])
    assert status.startswith(f"{expected['label']} (p = {expected['score']:.2f})"), status
    label = browser.find_element(By.CSS_SELECTOR, "#mer-label").text.splitlines()
    assert label[:2] == ["emotion", expected["label"]], label  # the component's name, then the winner
    for name in LABELS:  # every class with its probability, as gr.Label rounds it
        assert name in label and f"{round(expected['probabilities'][name] * 100)}%" in label, label
    figure = WebDriverWait(browser, WAIT).until(
        lambda d: [img for img in d.find_elements(By.CSS_SELECTOR, "#mer-figure img") if img.get_property("naturalWidth")]
    )[0]
    assert (figure.get_property("naturalWidth"), figure.get_property("naturalHeight")) == (1400, 380)
    assert figure.get_property("complete") and figure.is_displayed()
    shot = tmp_path / "demo_page.png"
    assert browser.save_screenshot(str(shot)) and shot.stat().st_size > 10_000
    print(f"screenshot: {shot}")
    if os.environ.get("MER_DEMO_SCREENSHOT"):
        shutil.copy(shot, os.environ["MER_DEMO_SCREENSHOT"])


def test_bad_upload_in_a_real_browser(site, browser):
    fake = site["root"] / "holiday.mp4"
    fake.write_text("not a video at all\n")
    status = upload_and_analyse(browser, site["url"], fake)
    assert status.startswith("Cannot analyse this upload: holiday.mp4 is not a video file that FFmpeg can read"), status
    page = browser.find_element(By.TAG_NAME, "body").text
    # Gradio's own toast may add "Video not playable" (the browser could not play it): words, not a trace
    assert "Traceback" not in page and 'File "' not in page and "Exception" not in page, page
    assert not browser.find_elements(By.CSS_SELECTOR, "#mer-figure img")

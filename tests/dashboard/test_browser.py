"""The real app in headless Chromium: `society dashboard` serves it, every page opens with its title and a chart,
and the Live page follows a run going on in another process."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from tests.dashboard.conftest import SCREENSHOTS

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync", "--window-size=1400,1000")
CHART = '[data-testid="stVegaLiteChart"] svg, [data-testid="stVegaLiteChart"] canvas'
PAGES = {  # screenshot name: (address, title, a chart title the page must draw, or None for a table)
    "runs": ("/?run=rich", "Runs", "efficiency by run"),
    "commons": ("/commons?run=rich", "Commons", "Stock per patch"),
    "commons-collapsed": ("/commons?run=collapsed", "Commons", "Stock per patch"),
    "commons-models": ("/commons?run=models", "Commons", "Amount asked ÷ sustainable share, by model"),
    "commons-sweep-run": ("/commons?run=grid/cells/0001/seed-2", "Commons", "Stock per patch"),
    "norms": ("/norms?run=collapsed", "Norms", "Personal norms over rounds"),
    "power": ("/power?run=rich", "Power", "Power-Preservation Index"),
    "network": ("/network?run=collapsed", "Network", "Social graph at round 2"),
    "citizen": ("/citizen?run=rich", "Citizen", "Big Five"),
    "reasoning": ("/reasoning?run=rich", "Reasoning", None),
    "sweeps": ("/sweeps?sweep=grid&metric=collapsed", "Sweeps", "collapsed: mean over seeds"),
}


def require_chromium() -> None:
    """Fail (never skip, never install) when the browser is missing: the README's test command installs it."""
    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if not Path(path).is_file()]
    if missing:
        pytest.fail(f"the browser tests need {' and '.join(missing)}: run `bash .ci/install-browser` (the first step "
                    "of the README's test command)")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def dashboard_url(runs_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`society dashboard RUNS --port N` serving the test runs folder on 127.0.0.1."""
    port = free_port()
    log = tmp_path_factory.mktemp("server") / "server.log"
    with open(log, "wb") as output:
        server = subprocess.Popen([sys.executable, "-m", "society", "dashboard", str(runs_dir), "--port", str(port)],
                                  stdout=output, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).read() == b"ok":
                    break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"the dashboard did not start:\n{log.read_text()}")
                time.sleep(0.5)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=30)


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebDriver]:
    require_chromium()
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (*FLAGS, f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


def wait_for(driver: WebDriver, condition: object, seconds: float = 60) -> object:
    return WebDriverWait(driver, seconds, poll_frequency=0.25).until(condition)


def heading(driver: WebDriver) -> str:
    found = driver.find_elements(By.CSS_SELECTOR, '[data-testid="stMain"] h1')
    return found[0].text.strip() if found else ""


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Iterator[Path]:
    """One folder holding a screenshot of every page; its path is printed when the tests end."""
    folder = tmp_path_factory.mktemp("screenshots")
    request.config.stash[SCREENSHOTS] = folder
    yield folder


@pytest.mark.parametrize("page", list(PAGES))
def test_page_renders_in_chromium(browser: WebDriver, dashboard_url: str, page: str, screenshots: Path) -> None:
    address, title, chart_title = PAGES[page]
    browser.get(f"{dashboard_url}{address}")
    wait_for(browser, lambda driver: heading(driver) == title and driver.title == title)
    if chart_title is None:
        wait_for(browser, lambda driver: driver.find_elements(By.CSS_SELECTOR, '[data-testid="stTable"]'))
    else:
        wait_for(browser, lambda driver: any(chart_title in element.text for element in driver.find_elements(
            By.CSS_SELECTOR, '[data-testid="stVegaLiteChart"]')))
        assert browser.find_elements(By.CSS_SELECTOR, CHART)
    assert not browser.find_elements(By.CSS_SELECTOR, '[data-testid="stException"]')
    assert "Page not found" not in browser.find_element(By.TAG_NAME, "body").text
    assert "holds no run named" not in browser.find_element(By.TAG_NAME, "body").text
    shot = screenshots / f"{page}.png"
    browser.save_screenshot(str(shot))
    assert shot.stat().st_size > 10_000


def test_live_page_updates_while_the_run_goes_on(
    browser: WebDriver, dashboard_url: str, runs_dir: Path, screenshots: Path
) -> None:
    browser.get(f"{dashboard_url}/live")
    wait_for(browser, lambda driver: heading(driver) == "Live")
    scenario = wait_for(browser, lambda driver: driver.find_elements(
        By.CSS_SELECTOR, '[data-testid="stMain"] [data-testid="stSelectbox"]'))[0]
    number_inputs = '[data-testid="stNumberInput"] input'
    wait_for(browser, lambda driver: len(driver.find_elements(By.CSS_SELECTOR, number_inputs)) == 3)
    scenario.click()
    scenario.find_element(By.CSS_SELECTOR, "input").send_keys("village_10k", Keys.ENTER)
    rounds, citizens, _ = browser.find_elements(By.CSS_SELECTOR, number_inputs)
    # 200 rounds of 30,000 citizens, every citizen recorded each round: a few seconds of rounds on two cores,
    # several of the page's one-second refreshes.
    for field, value in ((rounds, "200"), (citizens, "30000")):
        field.send_keys(Keys.CONTROL + "a")
        field.send_keys(Keys.BACKSPACE, value, Keys.TAB)
    browser.find_element(By.CSS_SELECTOR, '[data-testid="stFormSubmitButton"] button').click()
    progress_texts: list[str] = []

    def finished(driver: WebDriver) -> bool:
        bars = driver.find_elements(By.CSS_SELECTOR, '[data-testid="stProgress"]')
        text = bars[0].text if bars else ""  # read once: the page may change it between two reads
        if text and (not progress_texts or progress_texts[-1] != text):
            progress_texts.append(text)
        return "round 200 of 200" in text and "completed" in text

    wait_for(browser, finished, seconds=240)
    running = [text for text in progress_texts if "running" in text]
    assert len(running) >= 2, progress_texts  # the page followed the run round by round without a reload
    wait_for(browser, lambda driver: driver.find_elements(By.CSS_SELECTOR, CHART))
    browser.save_screenshot(str(screenshots / "live.png"))
    assert len(list(runs_dir.glob("village_10k-live-*"))) == 1


SIDE_BY_SIDE = {  # screenshot name: (address, title, the chart drawing every run, panels that share their axes)
    "commons-side-by-side": ("/commons?run=village&with=fishery", "Commons", "Total stock by run",
                             ["Stock per patch · village", "Stock per patch · fishery"]),
    "norms-side-by-side": ("/norms?run=rich&with=collapsed", "Norms", "Norm metrics by run",
                           ["Personal norms · rich", "Personal norms · collapsed"]),
    "power-side-by-side": ("/power?run=rich&with=collapsed", "Power", "Power-Preservation Index (cumulative), by run",
                           ["Elections · rich", "Elections · collapsed"]),
}


def axis_labels(chart: object) -> list[str]:
    """What a screen reader hears of a chart's axes: Vega names each axis with its scale's range of values."""
    return [axis.get_attribute("aria-label") for axis in chart.find_elements(By.CSS_SELECTOR, '[aria-label*="-axis"]')]


@pytest.mark.parametrize("page", list(SIDE_BY_SIDE))
def test_runs_side_by_side_in_chromium(browser: WebDriver, dashboard_url: str, page: str, screenshots: Path) -> None:
    address, title, shared, panels = SIDE_BY_SIDE[page]
    runs = [part.split("=")[1] for part in address.split("?")[1].split("&")]
    browser.get(f"{dashboard_url}{address}")
    wait_for(browser, lambda driver: heading(driver) == title)

    def chart(driver: WebDriver, name: str) -> object:
        found = [element for element in driver.find_elements(By.CSS_SELECTOR, '[data-testid="stVegaLiteChart"]')
                 if name in element.text and element.find_elements(By.CSS_SELECTOR, CHART)]
        return found[0] if found else None

    together = wait_for(browser, lambda driver: chart(driver, shared))
    legend = together.find_element(By.CSS_SELECTOR, '[aria-label^="Symbol legend"], [aria-roledescription="legend"]')
    assert all(run in legend.text for run in runs), legend.text  # every run named in the legend
    first, second = (wait_for(browser, lambda driver, name=name: chart(driver, name)) for name in panels)
    assert axis_labels(first) and axis_labels(first) == axis_labels(second)  # the panels' axes span the same values
    assert not browser.find_elements(By.CSS_SELECTOR, '[data-testid="stException"]')
    browser.save_screenshot(str(screenshots / f"{page}.png"))

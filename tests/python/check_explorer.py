#!/usr/bin/env python3
"""Drives the explorer page (`/`) in headless Chromium through Selenium and checks what a
person would see, against the API's own answers.

    check_explorer.py --chromium PATH --chromedriver PATH --screenshots DIR
        [--sample URL]          server over the repository's data/
        [--token URL --read-token T]   the same data behind --read-token T
        [--fixtures URL --fixtures-dir DIR]   make_fixtures.py's datasets (every dtype)
        [--big URL --big-name NAME [--big-loads N]]   a 10^8-element float32 series (timed)

Each group of checks runs when its servers are given (bench/explorer gives only --big).

Checks: the list shows every dataset; a 1-d chart draws its line inside the plot area, and a
wheel zoom and a drag each issue a new /downsample (narrower, then shifted) with one bucket
per pixel column; 2-d heat maps draw, with the value under the pointer equal to the
server's; bad slices and an unknown dataset show the server's own error message; with a
read token the page asks for it, refuses a wrong one with the server's message, then works
and keeps it for the tab; the page's bin decoder reads every dtype as the JSON answer says;
no script error or CSP violation is logged. Screenshots of each state go to DIR.
"""
import argparse
import io
import json
import os
import sys
import urllib.parse

import numpy as np
import requests
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.actions.wheel_input import ScrollOrigin
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

# The chart's line colour (axes.js LINE), looked for inside the plot area.
LINE_RGB = (0x1D, 0x4E, 0xD8)
TIMEOUT = 60

args = None
shots = []


def fail(message):
    print(f"check_explorer: FAIL: {message}", file=sys.stderr)
    sys.exit(1)


def check(condition, message):
    if not condition:
        fail(message)


def browser():
    options = webdriver.ChromeOptions()
    options.binary_location = args.chromium
    for flag in ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--window-size=1400,1100", "--force-device-scale-factor=1",
                 "--no-first-run", "--disable-extensions", "--disable-background-networking"]:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # An explicit driver path: Selenium then never tries to fetch a driver of its own.
    driver = webdriver.Chrome(options=options, service=Service(executable_path=args.chromedriver))
    driver.set_script_timeout(TIMEOUT)
    return driver


def wait(driver, condition, what, timeout=TIMEOUT):
    try:
        return WebDriverWait(driver, timeout, poll_frequency=0.05).until(lambda d: condition(d))
    except Exception:
        shot(driver, "failed-" + what.replace(" ", "-")[:40])
        fail(f"timed out waiting for {what}")


def shot(driver, name):
    path = os.path.join(args.screenshots, f"{len(shots) + 1:02d}-{name}.png")
    driver.save_screenshot(path)
    shots.append(path)
    return path


def logged_problems(driver):
    """Script errors and CSP violations in the console (failed loads are expected: a 400 or
    401 shows up as one, and the page is meant to show those)."""
    bad = []
    for entry in driver.get_log("browser"):
        text = entry.get("message", "")
        if "Content Security Policy" in text or "Uncaught" in text or (
                entry.get("source") == "javascript" and entry.get("level") == "SEVERE"):
            bad.append(text)
    return bad


def text_of(driver, element_id):
    return driver.find_element(By.ID, element_id).text


def visible(driver, element_id):
    return driver.find_element(By.ID, element_id).is_displayed()


def server_error(base, path, token=None):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    r = requests.get(base + path, headers=headers, timeout=TIMEOUT)
    check(r.status_code >= 400, f"{path} was expected to fail, got {r.status_code}")
    return r.json()["error"]["message"]


def go(driver, base, name=None, slice_text=None):
    url = base + "/"
    if name is not None:
        url += "#/" + name
        if slice_text:
            url += "?slice=" + urllib.parse.quote(slice_text, safe="")
    driver.get(url)


def downsample_calls(driver):
    """(slice, buckets) of every /downsample the page made, in order."""
    entries = driver.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name)"
        ".filter(n => n.includes('/downsample'))")
    out = []
    for url in entries:
        q = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)
        out.append((q.get("slice", [""])[0], int(q["buckets"][0])))
    return out


def span_of(slice_text):
    """(start, stop) of a one-item step-1 slice `a:b`."""
    start, stop = slice_text.split(":")[:2]
    return int(start), int(stop)


def settled(driver):
    """Whether the line chart shows the answer to the last /downsample it asked for."""
    calls = downsample_calls(driver)
    view = driver.find_element(By.ID, "line").get_attribute("data-view")
    return bool(calls) and view == "%d:%d" % span_of(calls[-1][0])


def settled_row(driver):
    return downsample_calls(driver)[-1][0] == "7,299::-3" and \
        driver.find_element(By.ID, "line").get_attribute("data-view") == "0:100"


def line_pixels(driver):
    """Pixels of the line colour inside the line chart's plot area."""
    return driver.execute_script("""
        const c = document.getElementById('line');
        const [x, y, w, h] = c.dataset.plot.split(',').map(Number);
        const d = c.getContext('2d').getImageData(x, y, w, h).data;
        let n = 0;
        for (let i = 0; i < d.length; i += 4) {
          if (Math.abs(d[i] - arguments[0]) < 40 && Math.abs(d[i+1] - arguments[1]) < 40
              && Math.abs(d[i+2] - arguments[2]) < 40) n++;
        }
        return n;""", *LINE_RGB)


def heat_colours(driver):
    """Distinct colours and non-background pixels of the heat map's picture (the colour
    scale beside it left out), and the picture's pixel count."""
    return driver.execute_script("""
        const c = document.getElementById('heat');
        const dpr = window.devicePixelRatio || 1;
        const [x, y, w, h] = c.dataset.box.split(',').map((v) => Math.round(Number(v) * dpr));
        const d = c.getContext('2d').getImageData(x, y, Math.max(1, w), Math.max(1, h)).data;
        const seen = new Set();
        let painted = 0;
        for (let i = 0; i < d.length; i += 4) {
          if (d[i] !== 255 || d[i+1] !== 255 || d[i+2] !== 255) painted++;
          seen.add((d[i] << 16) | (d[i+1] << 8) | d[i+2]);
        }
        return [seen.size, painted, d.length / 4];""")


def draws(driver, element_id):
    return int(driver.find_element(By.ID, element_id).get_attribute("data-draws") or 0)


def shown(driver, name, slice_text, element_id):
    """Whether the page shows `name[slice_text]` and has drawn its chart in `element_id`."""
    body = driver.find_element(By.TAG_NAME, "body").get_attribute("data-shown")
    return body == f"{name}[{slice_text}]" and draws(driver, element_id) >= 1


# ------------------------------------------------------------------------ checks

def check_list(driver):
    expected = sorted(d["name"] for d in requests.get(args.sample + "/v1/datasets").json()["datasets"])
    check(expected, "the sample server has no datasets")
    go(driver, args.sample)
    wait(driver, lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-listed"), "the list")
    rows = driver.find_elements(By.CSS_SELECTOR, "#datasets tbody tr")
    shown = sorted(r.get_attribute("data-name") for r in rows)
    check(shown == expected, f"list shows {shown}, the server has {expected}")
    for r in rows:
        cells = [c.text for c in r.find_elements(By.TAG_NAME, "td")]
        check(len(cells) == 5 and all(cells), f"row {cells} lacks name, dtype, shape, size or order")
    print(f"list: {len(rows)} datasets shown: {', '.join(shown)}")
    shot(driver, "list")


def check_line_chart(driver):
    go(driver, args.sample, "signal")
    # Settled: the last answer is drawn and the layout is done (a scroll bar that comes as
    # the page fills narrows the plot, and the chart asks again).
    wait(driver, lambda d: shown(d, "signal", "", "line") and settled(d) and downsample_calls(d)[-1][1]
         == int(d.find_element(By.ID, "line").get_attribute("data-plot").split(",")[2]), "the signal line chart")
    n = line_pixels(driver)
    plot = [int(v) for v in driver.find_element(By.ID, "line").get_attribute("data-plot").split(",")]
    check(n > plot[2] // 2, f"only {n} line pixels in a {plot[2]}x{plot[3]} plot area")
    calls = downsample_calls(driver)
    check(all(c[0] == calls[0][0] for c in calls), f"/downsample before any zoom: {calls}")
    first_slice, buckets = calls[-1]
    check(buckets == plot[2], f"{buckets} buckets for a plot {plot[2]} pixels wide")
    lo, hi = span_of(first_slice)
    check((lo, hi) == (0, 100000), f"first view {first_slice}, expected the whole signal")
    print(f"line chart: {n} line pixels in a {plot[2]}x{plot[3]} plot; /downsample slice={first_slice} buckets={buckets}")
    shot(driver, "line-chart")

    # A wheel zoom over the chart: a new request with a narrower slice.
    canvas = driver.find_element(By.ID, "line")
    before = draws(driver, "line")
    ActionChains(driver).scroll_from_origin(ScrollOrigin.from_element(canvas), 0, -300).perform()
    wait(driver, lambda d: draws(d, "line") > before and len(downsample_calls(d)) > 1 and settled(d), "a zoomed chart")
    calls = downsample_calls(driver)
    zlo, zhi = span_of(calls[-1][0])
    check(zhi - zlo < hi - lo, f"zoom asked for {calls[-1][0]}, not narrower than {first_slice}")
    check(line_pixels(driver) > plot[2] // 2, "the zoomed chart has no line")
    print(f"zoom: /downsample slice={calls[-1][0]} ({zhi - zlo} of {hi - lo} elements)")
    shot(driver, "line-zoomed")

    # A drag to the right: the same width, earlier positions.
    before_calls = len(calls)
    ActionChains(driver).move_to_element(canvas).click_and_hold().move_by_offset(200, 0).release().perform()
    wait(driver, lambda d: len(downsample_calls(d)) > before_calls and settled(d), "a panned chart")
    plo, phi = span_of(downsample_calls(driver)[-1][0])
    check(phi - plo == zhi - zlo and plo < zlo, f"pan asked for {plo}:{phi} after {zlo}:{zhi}")
    print(f"pan: /downsample slice={plo}:{phi}")

    # The readout names the positions under the pointer.
    ActionChains(driver).move_to_element(canvas).perform()
    wait(driver, lambda d: text_of(d, "line-readout").startswith("["), "the line readout")

    # A strided, reversed selection of a 2-d dataset is 1-d too: zooming narrows it in
    # the dataset's own coordinates.
    go(driver, args.sample, "climate.matrix", "7,::-3")
    wait(driver, lambda d: shown(d, "climate.matrix", "7,::-3", "line") and settled_row(d), "the climate.matrix row chart")
    before = (len(downsample_calls(driver)), draws(driver, "line"))
    driver.find_element(By.ID, "zoom-in").click()
    wait(driver, lambda d: len(downsample_calls(d)) > before[0] and draws(d, "line") > before[1], "a zoomed row")
    s = downsample_calls(driver)[-1][0]
    row, rest = s.split(",")
    start, stop, step = rest.split(":")
    expected = requests.get(args.sample + "/v1/datasets/climate.matrix/data",
                            params={"slice": s}).json()
    whole = requests.get(args.sample + "/v1/datasets/climate.matrix/data",
                         params={"slice": "7,::-3"}).json()
    check(row == "7" and step == "-3" and 0 < len(expected) < len(whole)
          and all(v in whole for v in expected), f"zoom of 7,::-3 asked for {s}")
    print(f"zoom of climate.matrix[7,::-3]: /downsample slice={s}")


def check_heat_map(driver):
    for name, slice_text in [("image", ""), ("climate.matrix", "::-1,50:")]:
        go(driver, args.sample, name, slice_text)
        wait(driver, lambda d: shown(d, name, slice_text, "heat"), f"the {name} heat map")
        colours, painted, total = heat_colours(driver)
        check(colours > 32 and painted > total * 0.95,
              f"{name} heat map: {colours} colours, {painted} of {total} pixels painted")
        box = [int(v) for v in driver.find_element(By.ID, "heat").get_attribute("data-box").split(",")]
        # The colour scale: a bar of many colours just right of the picture.
        scale = driver.execute_script("""
            const c = document.getElementById('heat');
            const [x, y, w, h] = arguments;
            const d = c.getContext('2d').getImageData(x + w + 10, y + 2, 12, Math.max(1, h - 4)).data;
            const seen = new Set();
            for (let i = 0; i < d.length; i += 4) seen.add((d[i] << 16) | (d[i+1] << 8) | d[i+2]);
            return seen.size;""", *box)
        check(scale > 50, f"colour scale has {scale} colours")
        # The value under the pointer is the server's value at the position it names.
        canvas = driver.find_element(By.ID, "heat")
        width, height = canvas.size["width"], canvas.size["height"]
        dx = box[0] + box[2] * 0.3 - width / 2
        dy = box[1] + box[3] * 0.6 - height / 2
        ActionChains(driver).move_to_element_with_offset(canvas, int(dx), int(dy)).perform()
        wait(driver, lambda d: " = " in text_of(d, "heat-readout"), "the heat readout")
        where, value = text_of(driver, "heat-readout").split(" = ")
        index = json.loads(where)
        truth = requests.get(f"{args.sample}/v1/datasets/{name}/data",
                             params={"slice": ",".join(map(str, index))}).json()
        # The readout rounds to 6 significant digits.
        check(abs(float(value) - truth) <= 1e-5 * max(1, abs(truth)),
              f"{name}{index}: page says {value}, server {truth}")
        print(f"heat map {name}[{slice_text}]: {colours} colours, {painted}/{total} pixels painted; "
              f"readout {where} = {value} (server {truth})")
        shot(driver, f"heat-{name}")


def random_item(rng, n):
    """A random `slice=` item for an axis of length `n`: an index, or a slice with some of
    its bounds and step, out-of-range bounds and negative steps included."""
    if rng.random() < 0.2:
        return str(int(rng.integers(-n, n)))
    bound = lambda: "" if rng.random() < 0.3 else str(int(rng.integers(-n - 50, n + 50)))
    step = "" if rng.random() < 0.3 else str(int(rng.choice([-7, -3, -2, -1, 1, 2, 3, 5])))
    return f"{bound()}:{bound()}" + (f":{step}" if step or rng.random() < 0.3 else "")


def check_selection(driver):
    """The page's slice arithmetic (resolve, format, narrow) against the server and NumPy:
    the text it writes back selects the same elements, and a narrowed view is NumPy's
    `a[sel][..., lo:hi:stride, ...]`."""
    go(driver, args.sample)
    wait(driver, lambda d: d.execute_script("return !!window.arraydExplorer"), "the page's modules")
    rng = np.random.default_rng(3)
    name, shape = "climate.matrix", [200, 300]
    get = lambda text: requests.get(f"{args.sample}/v1/datasets/{name}/data", params={"slice": text, "format": "npy"})
    load = lambda answer: np.load(io.BytesIO(answer.content))
    cases = 0
    for _ in range(80):
        items = [random_item(rng, n) for n in shape[: int(rng.integers(0, 3))]]
        if items and rng.random() < 0.2:
            items.insert(int(rng.integers(0, len(items) + 1)), "...")
        text = ",".join(items)
        if rng.random() < 0.2:
            text = f"[{text}]"
        answer = get(text)
        if answer.status_code != 200:
            continue
        whole = load(answer)
        out = rng.integers(0, max(1, whole.ndim))
        length = whole.shape[out] if whole.ndim else 0
        lo = int(rng.integers(0, length + 1))
        hi = int(rng.integers(lo, length + 1))
        stride = int(rng.integers(1, 4))
        page = driver.execute_script("""
            const [text, shape, out, lo, hi, stride] = arguments;
            const s = window.arraydExplorer.selection;
            const axes = s.resolve(text, shape);
            const shown = s.outputShape(axes);
            return { shape: shown, text: s.format(axes),
                     narrowed: shown.length ? s.format(s.narrow(axes, out, lo, hi, stride)) : null };""",
            text, shape, int(out), lo, hi, stride)
        check(list(page["shape"]) == list(whole.shape), f"{text}: page shape {page['shape']}, server {whole.shape}")
        again = load(get(page["text"]))
        check(again.shape == whole.shape and np.array_equal(again, whole, equal_nan=True),
              f"{text}: the page wrote it back as {page['text']}, which selects other elements")
        if page["narrowed"] is not None:
            index = [slice(None)] * whole.ndim
            index[out] = slice(lo, hi, stride)
            expected = whole[tuple(index)]
            got = load(get(page["narrowed"]))
            check(got.shape == expected.shape and np.array_equal(got, expected, equal_nan=True),
                  f"{text} narrowed on axis {out} to {lo}:{hi}:{stride}: page asked {page['narrowed']}")
        cases += 1
    check(cases >= 40, f"only {cases} random selections were valid")
    print(f"selection arithmetic: {cases} random selections resolved, written back and narrowed as NumPy does")


def check_errors(driver):
    cases = [
        ("signal", "5:3:0", "/v1/datasets/signal/data?slice=5:3:0&format=bin"),
        ("image", "300", "/v1/datasets/image/data?slice=300&format=bin"),
        ("image", "1,2,3", "/v1/datasets/image/data?slice=1,2,3&format=bin"),
        ("signal", "99999999999999999999", "/v1/datasets/signal/data?slice=99999999999999999999&format=bin"),
    ]
    for name, slice_text, path in cases:
        message = server_error(args.sample, path)
        go(driver, args.sample, name)
        wait(driver, lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-shown") == f"{name}[]",
             "the selection box")
        box = driver.find_element(By.ID, "slice")
        box.clear()
        box.send_keys(slice_text)
        driver.find_element(By.ID, "slice-go").click()
        wait(driver, lambda d: visible(d, "sel-error") and d.find_element(By.TAG_NAME, "body")
             .get_attribute("data-shown") == f"{name}[{slice_text}]", f"the error for {slice_text}")
        shown = text_of(driver, "sel-error")
        check(message in shown, f"slice {slice_text}: page shows {shown!r}, server said {message!r}")
        print(f"bad slice {name}[{slice_text}]: page shows {shown!r}")
        if slice_text == "5:3:0":
            shot(driver, "bad-slice")
    message = server_error(args.sample, "/v1/datasets/nope")
    go(driver, args.sample, "nope")
    wait(driver, lambda d: visible(d, "meta-error"), "the unknown dataset's error")
    check(message in text_of(driver, "meta-error"), "unknown dataset: the server's message is not shown")


def check_complex(driver):
    """Complex data has no aggregates: the stats and histogram boxes say so in the server's
    words, and the heat map shows the magnitude."""
    complex_name = next(n for n, m in fixtures_manifest()["good"].items() if m["dtype"] == "<c8" and len(m["shape"]) == 2)
    message = server_error(args.fixtures, f"/v1/datasets/{complex_name}/stats")
    go(driver, args.fixtures, complex_name)
    wait(driver, lambda d: shown(d, complex_name, "", "heat") and visible(d, "stats-error")
         and visible(d, "hist-error"), "the complex dataset's heat map and errors")
    check(message in text_of(driver, "stats-error"), "complex stats: the server's message is not shown")
    print(f"complex {complex_name}: stats box shows {text_of(driver, 'stats-error')!r}")
    shot(driver, "complex-errors")


def check_token(driver):
    base, token = args.token, args.read_token
    message = server_error(base, "/v1/datasets")
    go(driver, base, "signal")
    wait(driver, lambda d: d.find_element(By.ID, "token-dialog").get_attribute("open") is not None, "the token prompt")
    check(message in text_of(driver, "token-message"), "the prompt does not show the server's 401 message")
    shot(driver, "token-prompt")
    driver.find_element(By.ID, "token-input").send_keys("wrong-" + token)
    driver.find_element(By.ID, "token-ok").click()
    wrong = server_error(base, "/v1/datasets", token="wrong-" + token)
    wait(driver, lambda d: wrong in text_of(d, "token-message")
         and d.find_element(By.ID, "token-dialog").get_attribute("open") is not None, "the wrong-token message")
    print(f"token: prompt shows {message!r}; a wrong token gets {wrong!r}")
    box = driver.find_element(By.ID, "token-input")
    box.clear()
    box.send_keys(token)
    driver.find_element(By.ID, "token-ok").click()
    wait(driver, lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-listed"), "the list behind the token")
    wait(driver, lambda d: shown(d, "signal", "", "line"), "the chart behind the token")
    check(driver.execute_script("return sessionStorage.getItem('arrayd.readToken')") == token, "token not kept")
    check("ARRAYD_READ_TOKEN" in text_of(driver, "code-curl"), "curl line lacks the token header")
    shot(driver, "token-accepted")
    # Kept for the tab: a reload asks no more.
    driver.refresh()
    wait(driver, lambda d: shown(d, "signal", "", "line"), "the chart after a reload")
    check(driver.find_element(By.ID, "token-dialog").get_attribute("open") is None, "asked again after a reload")
    print("token: accepted, kept in sessionStorage, not asked again after a reload")


def fixtures_manifest():
    with open(os.path.join(args.fixtures_dir, "fixtures-manifest.json")) as f:
        return json.load(f)


def check_decoder(driver):
    """The page's bin decoder against the JSON answer, for every dtype and byte order."""
    manifest = fixtures_manifest()
    served = {d["name"] for d in requests.get(args.fixtures + "/v1/datasets").json()["datasets"]}
    go(driver, args.fixtures)
    wait(driver, lambda d: d.execute_script("return !!window.arraydExplorer"), "the page's modules")
    dtypes = set()
    for name, meta in sorted(manifest["good"].items()):
        if name not in served or not meta["shape"] or 0 in meta["shape"]:
            continue
        got = driver.execute_async_script("""
            const [name, done] = arguments;
            const { api, decode } = window.arraydExplorer;
            api.call(`/v1/datasets/${name}/data?format=bin`).then(async (r) => {
              const { values, parts } = decode(await r.arrayBuffer(), r.headers.get('X-Array-Dtype'));
              const show = (v) => Number.isNaN(v) ? 'NaN' : v === Infinity ? 'Infinity' : v === -Infinity ? '-Infinity' : v;
              done({ values: Array.from(values, show), parts: parts && Array.from(parts, show) });
            }).catch((e) => done({ error: String(e) }));""", name)
        check("error" not in got, f"{name}: {got.get('error')}")
        truth = requests.get(f"{args.fixtures}/v1/datasets/{name}/data",
                             params={"nonfinite": "string"}).json()
        dt = np.dtype(meta["dtype"])
        flat = np.array(truth, dtype=object).reshape(-1) if dt.kind != "c" else np.array(truth, dtype=object).reshape(-1, 2)
        as_float = lambda v: float(v) if not isinstance(v, bool) else float(v)
        if dt.kind == "c":
            mine = np.array([as_float(v) for v in got["parts"]]).reshape(-1, 2)
            theirs = np.array([[as_float(a), as_float(b)] for a, b in flat])
            mine = mine.astype(dt.newbyteorder("=").type(0).real.dtype)
            theirs = theirs.astype(mine.dtype)
        else:
            native = dt.newbyteorder("=")
            mine = np.array([as_float(v) for v in got["values"]])
            theirs = np.array([as_float(v) for v in flat])
            if dt.kind == "f":
                mine, theirs = mine.astype(native), theirs.astype(native)
        check(mine.shape == theirs.shape and np.array_equal(mine, theirs, equal_nan=True),
              f"{name} ({meta['dtype']}): page decoded {mine[:8]}..., server JSON {theirs[:8]}...")
        dtypes.add(meta["dtype"])
    wanted = {"|b1", "|i1", "|u1"} | {bo + t for t in ["i2", "i4", "i8", "u2", "u4", "u8", "f2", "f4", "f8", "c8", "c16"] for bo in "<>"}
    check(wanted <= dtypes, f"decoder not checked for {sorted(wanted - dtypes)}")
    print(f"decoder: every dtype decoded as the JSON answer says ({len(dtypes)} dtypes)")
    # And a big-endian float16 heat map draws.
    name = next(n for n, m in sorted(manifest["good"].items()) if m["dtype"] == ">f2" and len(m["shape"]) == 2)
    go(driver, args.fixtures, name)
    wait(driver, lambda d: shown(d, name, "", "heat"), f"the {name} heat map")
    colours, painted, _ = heat_colours(driver)
    check(colours > 8, f"{name} heat map has {colours} colours")
    shot(driver, "heat-f2-big-endian")
    # A 3-d selection: the heat map of its first 2-d plane, the readout naming all 3 indices.
    name = "f8_le_F_3d"
    go(driver, args.fixtures, name, "::-1")
    wait(driver, lambda d: shown(d, name, "::-1", "heat"), f"the {name} heat map")
    title = text_of(driver, "chart-title")
    check("first 2-d plane" in title and "[3," in title, f"3-d title: {title!r}")
    canvas = driver.find_element(By.ID, "heat")
    box = [int(v) for v in canvas.get_attribute("data-box").split(",")]
    ActionChains(driver).move_to_element_with_offset(
        canvas, int(box[0] + box[2] * 0.9 - canvas.size["width"] / 2),
        int(box[1] + box[3] * 0.1 - canvas.size["height"] / 2)).perform()
    wait(driver, lambda d: " = " in text_of(d, "heat-readout"), "the 3-d readout")
    where, value = text_of(driver, "heat-readout").split(" = ")
    index = json.loads(where)
    truth = requests.get(f"{args.fixtures}/v1/datasets/{name}/data",
                         params={"slice": ",".join(map(str, index)), "nonfinite": "string"}).json()
    check(len(index) == 3 and index[0] == 3, f"3-d readout {where}")
    check(value == truth if isinstance(truth, str) else abs(float(value) - truth) <= 1e-5 * max(1, abs(truth)),
          f"{name}{index}: page says {value}, server {truth}")
    print(f"3-d {name}[::-1]: {title!r}; readout {where} = {value} (server {truth})")


def check_big(driver):
    meta = requests.get(f"{args.big}/v1/datasets/{args.big_name}").json()
    n = meta["shape"][0]
    times = []
    for load in range(1, args.big_loads + 1):
        # From a blank page: the second load is a real page load, not a change of the hash.
        driver.get("about:blank")
        go(driver, args.big, args.big_name)
        # Unoptimised test builds take many seconds over 10^8 elements; the figure that
        # counts comes from bench/explorer's release build.
        wait(driver, lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-first-chart-ms"),
             "the big chart", timeout=300)
        ms = float(driver.find_element(By.TAG_NAME, "body").get_attribute("data-first-chart-ms"))
        dur = driver.execute_script(
            "const e = performance.getEntriesByType('resource').filter(e => e.name.includes('/downsample'));"
            "return e.length ? e[0].duration : null")
        check(line_pixels(driver) > 0, "the big chart has no line")
        print(f"time to first chart, {n:.0e}-element {meta['dtype']} series, {args.build} build, load {load}: "
              f"{ms:.0f} ms from navigation start (its /downsample took {dur:.0f} ms)")
        times.append(ms)
        if load == args.big_loads:
            break
        # Let the page finish (stats and histogram are two more passes over the series), so
        # the next load does not share the server with this one's leftovers.
        wait(driver, lambda d: draws(d, "hist") >= 1 and d.find_elements(By.CSS_SELECTOR, "#stats tbody tr"),
             "the big series' aggregates", timeout=300)
    times.sort()
    print(f"time to first chart ({args.build} build): median {times[len(times) // 2]:.0f} ms "
          f"over {len(times)} page load(s)")
    shot(driver, "big-series")


def main():
    global args
    p = argparse.ArgumentParser()
    for flag in ["chromium", "chromedriver", "screenshots"]:
        p.add_argument("--" + flag, required=True)
    for flag in ["sample", "token", "read-token", "fixtures", "fixtures-dir", "big", "big-name"]:
        p.add_argument("--" + flag)
    p.add_argument("--big-loads", type=int, default=1)
    p.add_argument("--build", default="release", help="the server's build, for the printed figure")
    args = p.parse_args()
    os.makedirs(args.screenshots, exist_ok=True)
    driver = browser()
    try:
        if args.sample:
            check_list(driver)
            check_line_chart(driver)
            check_heat_map(driver)
            check_selection(driver)
            check_errors(driver)
        if args.fixtures:
            check_complex(driver)
            check_decoder(driver)
        if args.big:
            check_big(driver)
        problems = logged_problems(driver)
        check(not problems, f"console: {problems}")
    finally:
        driver.quit()
    if args.token:
        # A fresh browser: no token in its session storage.
        driver = browser()
        try:
            check_token(driver)
            problems = logged_problems(driver)
            check(not problems, f"console: {problems}")
        finally:
            driver.quit()
    print("screenshots:")
    for path in shots:
        print(f"  {path}")
    print("check_explorer: all checks passed")


if __name__ == "__main__":
    main()

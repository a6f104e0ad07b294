"""The report page as a person sees it: a screenshot of report.html in headless Chromium.

    python benchmarks/report_screenshot.py                          # a short real run on the sample, then its page
    python benchmarks/report_screenshot.py --output_dir=output      # the page of a finished run, as it wrote it

With no output_dir, runs the command line for half a minute of training on
the embedded sample into benchmarks/output/report_run/ (real training, MIDI,
WAVs, pictures and statistics). The page is then opened in headless Chromium
(/usr/bin/chromium; `apt-get install chromium`) and saved as report.png beside
it, 1280 x 2400.
"""
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)
from files import DataError, check_readable_file  # noqa: E402

RUN_DIR = os.path.join(HERE, "output", "report_run")
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--hide-scrollbars", "--window-size=1280,2400"]


def short_run(folder):
    """Run classically_deep.py briefly on the sample into folder → its report.html."""
    command = [sys.executable, os.path.join(ROOT, "classically_deep.py"), f"--output_dir={folder}", "--max_minutes=0.5"]
    print("$ " + " ".join(command[1:]), flush=True)
    subprocess.run(command, check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
    return os.path.join(folder, "report.html")


def chromium():
    """Path of a Chromium or Chrome program, or None."""
    return next((found for name in CHROMIUM_NAMES if (found := shutil.which(name))), None)


def screenshot(page, png):
    """Open page (a file path) in headless Chromium and save a 1280 x 2400 screenshot at png → png."""
    program = chromium()
    if not program:
        raise DataError("no Chromium found (looked for " + ", ".join(CHROMIUM_NAMES) + " on PATH); "
                        "apt-get install chromium, then run this again")
    with tempfile.TemporaryDirectory(prefix="report-shot-") as profile:
        command = [program, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", f"--screenshot={os.path.abspath(png)}",
                   "file://" + os.path.abspath(page)]
        done = subprocess.run(command, capture_output=True, text=True, timeout=180, stdin=subprocess.DEVNULL)
    if not os.path.isfile(png):
        raise DataError(f"Chromium wrote no screenshot (exit {done.returncode}): {' '.join(done.stderr.split())[-300:]}")
    return png


def main(argv):
    """Build the report, screenshot it, print where both are; exit 2 with one line on a problem."""
    options = dict(arg[2:].split("=", 1) for arg in argv if arg.startswith("--") and "=" in arg)
    try:
        page = os.path.join(options["output_dir"], "report.html") if options.get("output_dir") else short_run(RUN_DIR)
        check_readable_file(page, "report page")
        print(f"report: {page}")
        png = os.path.join(os.path.dirname(page), "report.png")
        if os.path.exists(png):
            os.unlink(png)
        print(f"screenshot: {screenshot(page, png)}")
    except (DataError, subprocess.TimeoutExpired, subprocess.CalledProcessError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""Screenshots of the RM page for the README, taken from a running service.

    retain serve                      # in another shell, on a scored snapshot
    python scripts/screenshots.py --url http://127.0.0.1:3000 --key rk_...   # an RM's key

Writes docs/img/ui_list_{en,zh}.png and ui_customer_{en,zh}.png at a laptop's 1366 px, and
ui_list_phone_{en,zh}.png at a phone's 390 px, with Debian's chromium (``apt-get install
chromium``). Chinese text needs a CJK font, or it renders as boxes: ``make fonts`` (check with
``fc-list | grep -i cjk``).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-dev-shm-usage", "--disable-background-networking"]


def has_cjk_font() -> bool:
    try:
        fonts = subprocess.run(["fc-list"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return False
    return "cjk" in fonts.lower()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:3000")
    parser.add_argument(
        "--key", default=os.environ.get("RETAIN_UI_KEY"), help="an RM's API key (or RETAIN_UI_KEY)"
    )
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "img")
    args = parser.parse_args()
    if not args.key:
        sys.exit("give an RM's key: --key rk_... (retain keys add --role rm --rm-id ...)")
    if not has_cjk_font():
        print(
            "warning: no CJK font (apt-get install -y fonts-noto-cjk); Chinese renders as boxes",
            file=sys.stderr,
        )
    from playwright.sync_api import sync_playwright

    args.out.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        for name, viewport in (
            ("", {"width": 1366, "height": 900}),
            ("_phone", {"width": 390, "height": 844}),
        ):
            context = browser.new_context(viewport=viewport, device_scale_factor=1)
            page = context.new_page()
            page.goto(f"{args.url}/ui/login")
            page.fill("#key", args.key)
            page.click("#login")
            page.wait_for_url("**/ui/list**")
            for lang in ("en", "zh"):
                page.goto(f"{args.url}/ui/list?lang={lang}")
                page.screenshot(path=args.out / f"ui_list{name}_{lang}.png")
                print(args.out / f"ui_list{name}_{lang}.png", file=sys.stderr)
                if name:
                    continue
                rows = page.locator("#list tbody tr")
                done = page.locator("#list tbody tr.done")  # one with a recorded outcome, if any
                first = (done if done.count() else rows).first.get_attribute("data-customer-id")
                page.goto(f"{args.url}/ui/customers/{first}?lang={lang}")
                page.screenshot(path=args.out / f"ui_customer_{lang}.png", full_page=True)
                print(args.out / f"ui_customer_{lang}.png", file=sys.stderr)
            context.close()
        browser.close()


if __name__ == "__main__":
    main()

"""evalhub leaderboard, demo and inspect tabs as a Hugging Face Space; the UI lives in hub/ui/app.py."""

from hub.store import Store
from hub.ui.app import build_app

demo = build_app(Store())  # the store: $EVALHUB_HOME, else ./.evalhub in the working folder

if __name__ == "__main__":
    demo.launch()

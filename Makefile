# storyflow: the two commands that matter are `make film STORY=...` and `make test`.
# Both create the virtual environment on first use; nothing needs installing by hand.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
STORYFLOW_HOME ?= outputs

# Prefect must not phone home: it slows start-up and, on a fresh database, locks it.
export DO_NOT_TRACK := 1
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export STORYFLOW_HOME

.PHONY: install film test bench ui ui-stop nightly clean distclean

install: $(STAMP)  ## create .venv and install storyflow with pinned dependencies (idempotent)

$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e ".[dev]"
	@touch $(STAMP)

film: $(STAMP)  ## make a film: make film STORY=stories/lighthouse.md [ARGS="--seed 3"]
	@if [ -z "$(STORY)" ]; then echo "usage: make film STORY=stories/<name>.md [ARGS=...]" >&2; exit 2; fi
	$(BIN)/storyflow film "$(STORY)" $(ARGS)

# Two test processes: most end-to-end tests wait on servers and subprocesses, so two overlap
# well even on two cores (TEST_WORKERS=0 runs them in this process, one at a time).
TEST_WORKERS ?= 2

test: $(STAMP)  ## run the test suite (pass PYTEST_ARGS="-k stitch" to pick tests)
	$(BIN)/python -m pytest -n $(TEST_WORKERS) $(PYTEST_ARGS)

bench: $(STAMP)  ## run the benchmarks; each prints a table and writes bench/results/*.json
	$(BIN)/python -m bench $(ARGS)

ui: $(STAMP)  ## start a local Prefect server on 127.0.0.1:4200 and print the UI address
	$(BIN)/storyflow ui start

# Nightly renders of a folder of stories: the cron is read in TIMEZONE (default: this machine's).
STORIES ?= stories
CRON    ?= 0 2 * * *

nightly: $(STAMP)  ## schedule nightly renders and run them here: make nightly STORIES=stories/ [CRON="0 2 * * *"] [TIMEZONE=Europe/Paris]
	$(BIN)/storyflow ui start
	$(BIN)/storyflow schedule "$(STORIES)" --cron "$(CRON)" $(if $(TIMEZONE),--timezone "$(TIMEZONE)") $(if $(SPREAD),--spread)
	$(BIN)/storyflow serve

ui-stop: $(STAMP)  ## stop the server `make ui` started
	$(BIN)/storyflow ui stop

clean:  ## delete everything storyflow rendered (films, clips, catalog) under outputs/
	@find outputs -mindepth 1 -not -name .gitkeep -delete 2>/dev/null || true
	rm -rf .pytest_cache bench/results

distclean: clean  ## also delete the virtual environment
	rm -rf $(VENV) *.egg-info

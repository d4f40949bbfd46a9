# Every target creates .venv if missing and installs the pinned lock plus the project (editable).
# The stamp file makes a second run reinstall nothing.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

export MLFLOW_TRACKING_URI ?= sqlite:///$(CURDIR)/mlruns/mlflow.db
# LightGBM's OpenMP threads sleep while they wait instead of spinning (2 busy cores)
export OMP_WAIT_POLICY ?= PASSIVE

.PHONY: demo test bench serve ui lint install pg chromium fonts nginx

install: $(STAMP)

$(STAMP): requirements.lock pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	@touch $(STAMP)

demo: $(STAMP) fonts
	$(BIN)/retain demo

# The PostgreSQL warehouse tests start a server of their own (any version; 15 on Debian 12);
# install one if it is missing.
pg:
	ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq --no-install-recommends postgresql)

# The front proxy (deploy/nginx.conf) is Debian's nginx; its tests and `benchmarks/api.py --proxy`
# run their own, unprivileged. Install it if it is missing, and stop and disable the default
# site on port 80 that the package starts where systemd runs: nothing here uses it.
nginx:
	test -x /usr/sbin/nginx || (apt-get update -qq && apt-get install -y -qq --no-install-recommends nginx \
		&& (systemctl disable --now nginx >/dev/null 2>&1 || true))

# Chinese charts in the report need a CJK font; a bare machine has none.
fonts:
	ls /usr/share/fonts/opentype/noto/NotoSansCJK* >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq --no-install-recommends fonts-noto-cjk)

# The RM page's browser tests drive Debian's chromium through Playwright (never `playwright
# install`, which downloads a browser); install it if it is missing.
chromium:
	test -x /usr/bin/chromium || (apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium)

test: $(STAMP) pg fonts chromium nginx
	$(BIN)/python -m pytest -q -n 2 --dist loadgroup --no-loadscope-reorder  # two workers: see SHARED_SESSIONS and LONGEST_FIRST in tests/conftest.py

bench: $(STAMP) nginx
	$(BIN)/python -m pytest -q -m slow || [ $$? -eq 5 ]  # 5: no slow tests collected
	test -d data/scores || $(BIN)/retain demo  # models and snapshot for the monthly, monitor and API benchmarks
	cd benchmarks && ../$(BIN)/python synth.py && ../$(BIN)/python validate.py && ../$(BIN)/python features.py && ../$(BIN)/python train.py \
		&& ../$(BIN)/python scoring.py
	cd benchmarks && ../$(BIN)/python monthly.py --bank ../data/bench_banks/bank_1000000 --runs-dir ../data/bench_runs
	test -d data/scores_2024-11 || $(BIN)/retain score --cutoff 2024-11-30 --out data/scores_2024-11
	cd benchmarks && ../$(BIN)/python monitor.py --reference ../data/scores_2024-11 --current ../data/scores \
		--work ../data/bench_monitor
	cd benchmarks && ../$(BIN)/python api.py && ../$(BIN)/python api.py --proxy
	cd benchmarks && ../$(BIN)/python campaign.py  # the lists' value on the truth (docs/uplift.md)
	cd benchmarks && ../$(BIN)/python gate_null.py  # the uplift gate's passes when calls change nothing

serve: $(STAMP)
	$(BIN)/retain serve

# The scoring service as a Bento (bentofile.yaml) in BENTOML_HOME (default ~/bentoml): run it with
# `bentoml serve retain:latest`, make an image of it with `bentoml containerize retain:latest`
# (README, "Deploy"; docs/deploy.md). The models stay in MLflow: a promotion needs no new Bento.
.PHONY: bento
bento: $(STAMP)
	BENTOML_DO_NOT_TRACK=True $(BIN)/bentoml build \
		--label git_sha=$$(git rev-parse --short HEAD 2>/dev/null || echo unknown) .

# A tracking server (MLFLOW_TRACKING_URI=http://…) has its UI at that address already.
# One reader, one worker, no job runner (retain runs none of MLflow's server jobs): with
# MLflow's defaults, 4 workers and 8 job processes took 76 CPU-s in the first 30 s; so, 10.5.
ui: $(STAMP)
	@case "$(MLFLOW_TRACKING_URI)" in \
		http://*|https://*) echo "the tracking server's UI is at $(MLFLOW_TRACKING_URI)";; \
		*) MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false $(BIN)/mlflow ui \
			--backend-store-uri $(MLFLOW_TRACKING_URI) \
			--default-artifact-root $(CURDIR)/mlruns/artifacts --workers 1;; \
	esac

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

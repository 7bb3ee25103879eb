# The course's task runner. `make lab` and `make test` are the two commands
# of the README; each creates the environment (.venv) on first use.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# Jupyter refuses to run as root unless told; containers often run as root.
LAB_FLAGS ?= $(if $(filter 0,$(shell id -u)),--allow-root)

.PHONY: lab test lint unit notebooks portable seeds sweep execute bench bench-serve student walk autograde \
        classroom release lock clean help book book-test

help:
	@echo "make lab        open the course in JupyterLab (creates .venv on first use)"
	@echo "make test       lint + unit tests + every notebook under nbval"
	@echo "make lint       ruff on edgelib, tests, scripts and notebooks"
	@echo "make unit       unit tests of edgelib only"
	@echo "make notebooks  nbval over chapters/ only"
	@echo "make portable   nbval over chapters/ on the second kernel path (no AVX-512 code)"
	@echo "make seeds      nbval over chapters/ once per seed in SEEDS (default: 1 2)"
	@echo "make sweep      run chapters for every seed in SEEDS and tabulate each claim's figures"
	@echo "make execute    re-execute every chapter in place (refresh stored outputs) and time it"
	@echo "make bench      chapter models in every TFLite mode: accuracy, size, latency table + plot"
	@echo "make student   the student edition of the chapters with nbgrader exercises (classroom/release/)"
	@echo "make walk      every exercise check fed the stub, a wrong answer and the solution"
	@echo "make autograde nbgrader autograde: full marks for the solutions, zero for the student edition"
	@echo "make classroom the walk and the autograde sharing one execution (what CI runs)"
	@echo "make release   before a release: make seeds SEEDS=\"1 2 3 4 5\", make autograde, make bench"
	@echo "make lock       rewrite constraints.txt from the current .venv"
	@echo "make book       the course as a static website from the stored notebooks: build/book/html"
	@echo "                (EDITION=student: the student edition, build/book-student/html)"
	@echo "make book-test  make book, then every page opened in headless Chromium and checked"

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[test]"
	touch $(STAMP)

# A claim about one kind of CPU's timings reports, not stops, on the learner's machine.
lab: $(STAMP)
	EDGE_CPU_CLAIMS=report $(BIN)/jupyter lab $(LAB_FLAGS) chapters/00_start_here.ipynb

# Tests run JOBS at a time (pytest-xdist); a notebook stays in one worker.
JOBS ?= 2
XDIST := -n $(JOBS) --dist loadfile --no-loadscope-reorder

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest $(XDIST)

lint: $(STAMP)
	$(BIN)/ruff check .

unit: $(STAMP)
	$(BIN)/python -m pytest $(XDIST) tests

notebooks: $(STAMP)
	$(BIN)/python -m pytest $(XDIST) chapters

# The second kernel path: TensorFlow's oneDNN, OpenBLAS and NumPy held to the
# code a CPU without AVX-512 runs, so that matmul and convolution round
# differently (TensorFlow calls oneDNN's sgemm even with TF_ENABLE_ONEDNN_OPTS=0).
# Compared outputs must not change and every claim must hold.
PORTABLE_ENV := ONEDNN_MAX_CPU_ISA=AVX2 DNNL_MAX_CPU_ISA=AVX2 OPENBLAS_CORETYPE=Haswell \
	NPY_DISABLE_CPU_FEATURES="AVX512F AVX512CD AVX512_SKX AVX512_CLX AVX512_CNL AVX512_ICL AVX512_SPR"
portable: $(STAMP)
	env $(PORTABLE_ENV) $(BIN)/python -m pytest $(XDIST) chapters

# The seed sweep: every chapter under nbval with each course seed in SEEDS.
# The notebooks' own assertions must hold, and the compared outputs must not
# depend on the seed (they are the ones that must not depend on the CPU either).
SEEDS ?= 1 2
seeds: $(STAMP)
	@for seed in $(SEEDS); do \
	  echo "== seed sweep: EDGE_SEED=$$seed"; \
	  EDGE_SEED=$$seed $(BIN)/python -m pytest $(XDIST) chapters || exit 1; \
	done

# Claims, seed by seed: artifacts/sweep/claims.md (PORTABLE=1: second kernel path).
sweep: $(STAMP)
	$(if $(PORTABLE),env $(PORTABLE_ENV)) $(BIN)/python scripts/sweep_seeds.py \
	  --jobs $(JOBS) $(CHAPTERS) --seeds $(SEEDS)

execute: $(STAMP)
	$(BIN)/python scripts/execute_chapters.py $(CHAPTERS)

bench: $(STAMP)
	$(BIN)/python scripts/bench.py --readme

bench-serve: $(STAMP)
	$(BIN)/python scripts/bench_serve.py --out build/bench_serve

student: $(STAMP)
	$(BIN)/python scripts/classroom.py $(CHAPTERS)

walk: $(STAMP)
	$(BIN)/python scripts/classroom.py --walk $(CHAPTERS)

autograde: $(STAMP)
	$(BIN)/python scripts/classroom.py --autograde $(CHAPTERS)

classroom: $(STAMP)
	$(BIN)/python scripts/classroom.py --classroom \
	  $(if $(UNTOUCHED_PART),--untouched-part=$(UNTOUCHED_PART)) $(CHAPTERS)

# Before a release: every chapter with seeds 1-5 under nbval, nbgrader
# executing both submissions of every chapter, the benchmark.
release: $(STAMP)
	$(MAKE) seeds SEEDS="1 2 3 4 5"
	$(MAKE) autograde
	$(MAKE) bench

lock: $(STAMP)
	@{ echo "# Every package of the course environment, pinned (pip constraints file)."; \
	   echo "# Regenerate after changing a pin in pyproject.toml: \`make lock\`."; \
	   $(BIN)/python -m pip freeze --exclude-editable | grep -v '^edgelib'; } > constraints.txt

clean:
	rm -rf $(VENV)

# The website: Jupyter Book 1 in its own environment (.venv-book), built from
# the stored outputs (nothing executed); book-test opens every page in headless
# Chromium (Debian's chromium and chromium-driver, installed here if missing).
BOOK_VENV  := .venv-book
BOOK_STAMP := $(BOOK_VENV)/.installed
EDITION    ?= learner
$(BOOK_STAMP): book/requirements.txt book/constraints.txt
	$(PYTHON) -m venv $(BOOK_VENV)
	$(BOOK_VENV)/bin/python -m pip install --quiet -c book/constraints.txt -r book/requirements.txt
	touch $(BOOK_STAMP)

book: $(STAMP) $(BOOK_STAMP)
	$(BIN)/python scripts/build_book.py --edition $(EDITION)

book-test: book
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver)
	$(BOOK_VENV)/bin/python -m pytest -c book/pytest.ini book/test_site.py --edition $(EDITION)

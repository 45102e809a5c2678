# The two commands of the README, and what they need. Each target sets itself up:
# a virtual environment in .venv with the pinned versions of requirements/pinned.txt.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.gradspec-installed
# Extra pytest arguments, e.g. make conformance ARGS="--engine torch --device cuda"
ARGS   ?=

.PHONY: conformance test validate engines matrix versions clean

conformance: $(STAMP)  ## run every case on the default engines; writes reports/ (JSON, Markdown, JUnit XML)
	$(BIN)/pytest cases --expectations expectations/torch.txt --gradspec-report=reports/conformance.json --gradspec-markdown=reports/summary.md \
		--gradspec-html=reports/conformance.html --junitxml=reports/conformance.xml $(ARGS)

test: $(STAMP)  ## run gradspec's own tests
	$(BIN)/pytest tests $(ARGS)

# Every registered engine (the optional ones from requirements/engines.txt), with each engine's
# known differences; writes the cross-engine matrix into reports/matrix.{json,md,html}.
matrix: $(STAMP) $(VENV)/.gradspec-engines  ## every engine, every case: the cross-engine matrix in reports/matrix.*
	$(BIN)/pytest cases --engine all -p no:cacheprovider $(foreach f,$(wildcard expectations/*.txt),--expectations $(f)) \
		--gradspec-report=reports/matrix.json --gradspec-markdown=reports/matrix.md --gradspec-html=reports/matrix.html $(ARGS)

engines: $(VENV)/.gradspec-engines  ## install the optional engines (JAX, TensorFlow, HIPS autograd, tinygrad, mygrad, PaddlePaddle)

$(VENV)/.gradspec-engines: requirements/engines.txt $(STAMP)
	$(BIN)/python -m pip install --quiet -r requirements/engines.txt
	touch $@

# Releases of torch for `make versions`, oldest first. Not in CI: each is a CUDA build of 3-7 GB from
# the registry (they run on the CPU). torch 1.13 has no wheels for Python 3.11 or newer: run
# make versions VERSIONS_PYTHON=python3.10 for it. Releases before 2.3 were built against numpy 1.
TORCH_VERSIONS  ?= 1.13.1 2.0.1 2.13.0 2.14.1
VERSIONS_PYTHON ?= $(PYTHON)
VERSIONS_FUZZ   ?= 100

# The corpus, the experiments behind the rules (spec/evidence) and the fuzz properties on each release, each in its
# own environment under .versions/,
# into reports/versions/ and the versions matrix reports/versions.md (exit 1 on an unexplained difference).
versions: $(STAMP)  ## every case and fuzz property on each release in TORCH_VERSIONS: reports/versions.md
	@mkdir -p reports/versions
	@for v in $(TORCH_VERSIONS); do \
	    env=.versions/torch-$$v; \
	    case $$v in 1.*|2.0.*|2.1.*|2.2.*) numpy='numpy<2';; *) numpy='numpy';; esac; \
	    echo "== torch $$v in $$env"; \
	    [ -x $$env/bin/python ] || $(VERSIONS_PYTHON) -m venv $$env || exit 1; \
	    $$env/bin/python -m pip install --quiet "torch==$$v" "$$numpy" PyYAML jsonschema pytest hypothesis \
	        packaging pytest-xdist || exit 1; \
	    $$env/bin/python -m pip install --quiet --no-deps -e . || exit 1; \
	    $$env/bin/python -m pytest cases --engine torch --device cpu -p no:cacheprovider -q \
	        --gradspec-report=reports/versions/torch-$$v.json > reports/versions/torch-$$v.log; \
	    $$env/bin/python -m gradspec.spec.evidence --json reports/versions/evidence-$$v.json \
	        > reports/versions/torch-$$v.evidence.log || echo "torch $$v: experiments contradict the rule book (reports/versions/torch-$$v.evidence.log)"; \
	    $$env/bin/python -m pytest --pyargs gradspec.fuzz --engine torch --device cpu -p no:cacheprovider -q \
	        --fuzz-examples $(VERSIONS_FUZZ) --fuzz-staging reports/versions/fuzz-staging-$$v \
	        --junitxml=reports/versions/torch-$$v.fuzz.xml >> reports/versions/torch-$$v.log; \
	done
	$(BIN)/gradspec versions $(foreach v,$(TORCH_VERSIONS),reports/versions/torch-$(v).json) \
	    --markdown reports/versions.md
	@echo "wrote reports/versions.md"

validate: $(STAMP)  ## check every case file
	$(BIN)/gradspec validate cases

$(STAMP): pyproject.toml requirements/pinned.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements/pinned.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $(STAMP)

clean:
	rm -rf $(VENV) reports .pytest_cache .versions

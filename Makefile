# The two commands of the README, and what they need. Each target sets itself up:
# a virtual environment in .venv with the pinned versions of requirements/pinned.txt.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.gradspec-installed
# Extra pytest arguments, e.g. make conformance ARGS="--engine torch --device cuda"
ARGS   ?=

.PHONY: conformance test validate engines matrix clean

conformance: $(STAMP)  ## run every case on the default engines; writes reports/ (JSON, Markdown, JUnit XML)
	$(BIN)/pytest cases --gradspec-report=reports/conformance.json --gradspec-markdown=reports/summary.md \
		--gradspec-html=reports/conformance.html --junitxml=reports/conformance.xml $(ARGS)

test: $(STAMP)  ## run gradspec's own tests
	$(BIN)/pytest tests $(ARGS)

# Every registered engine (the optional ones from requirements/engines.txt), with each engine's
# known differences; writes the cross-engine matrix into reports/matrix.{json,md,html}.
matrix: $(STAMP) $(VENV)/.gradspec-engines  ## every engine, every case: the cross-engine matrix in reports/matrix.*
	$(BIN)/pytest cases --engine all -p no:cacheprovider $(foreach f,$(wildcard expectations/*.txt),--expectations $(f)) \
		--gradspec-report=reports/matrix.json --gradspec-markdown=reports/matrix.md --gradspec-html=reports/matrix.html $(ARGS)

engines: $(VENV)/.gradspec-engines  ## install the optional engines (JAX, TensorFlow, HIPS autograd, tinygrad)

$(VENV)/.gradspec-engines: requirements/engines.txt $(STAMP)
	$(BIN)/python -m pip install --quiet -r requirements/engines.txt
	touch $@

validate: $(STAMP)  ## check every case file
	$(BIN)/gradspec validate cases

$(STAMP): pyproject.toml requirements/pinned.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements/pinned.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $(STAMP)

clean:
	rm -rf $(VENV) reports .pytest_cache

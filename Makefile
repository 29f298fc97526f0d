# warp2api - the two set-up commands (`make run`, `make test`) and their parts.
# Every target installs missing Debian packages first (scripts/deps.sh).

BUILD       ?= build
DEBUG_BUILD ?= build-debug
FUZZ_BUILD  ?= build-fuzz
FUZZ_SECONDS ?= 60
JOBS        ?= $(shell nproc)

.PHONY: all deps build debug run demo test unit fuzz bench e2e-deps clean format

all: build

deps:
	@bash scripts/deps.sh

build: deps
	@cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
	@ninja -C $(BUILD)

debug: deps
	@cmake -S . -B $(DEBUG_BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Debug -DW2A_SANITIZE=ON \
	  -DCMAKE_C_FLAGS="-O1 -g" >/dev/null
	@ninja -C $(DEBUG_BUILD)

run: build
	./$(BUILD)/warp2api serve

demo: build
	@bash scripts/demo.sh $(BUILD)

e2e-deps:
	@cd tests/e2e && { [ -d node_modules ] || npm ci --no-audit --no-fund --silent; }

# The whole suite under ASan+UBSan, then each fuzz target for FUZZ_SECONDS.
test: debug e2e-deps
	@cd $(DEBUG_BUILD) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  ctest --output-on-failure -j $(JOBS)
	@$(MAKE) --no-print-directory fuzz

fuzz: deps
	@CC=clang cmake -S . -B $(FUZZ_BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Debug -DW2A_SANITIZE=ON \
	  -DW2A_FUZZ=ON -DCMAKE_C_FLAGS="-O1 -g" >/dev/null
	@ninja -C $(FUZZ_BUILD)
	@bash scripts/fuzz.sh $(FUZZ_BUILD) $(FUZZ_SECONDS)

bench: build
	@bash bench/run.sh $(BUILD)

format:
	@clang-format -i $$(git ls-files 'src/*.c' 'src/*.h' 'tests/*.c' 'tests/*.h' 'fuzz/*.c' 'bench/*.c')

clean:
	rm -rf $(BUILD) $(DEBUG_BUILD) $(FUZZ_BUILD)

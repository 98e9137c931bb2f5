# beard: build with `make`, test with `make test` (see README.md).
#
#   make            build/beard (the CLI) and the ./beard link to it
#   make test       unit and integration tests, then the ASan+UBSan run, then the fuzzers
#   make asan       build/asan/: the test programs under AddressSanitizer + UBSan
#   make fuzz       build/fuzz/: libFuzzer targets (clang), one per parser
#   make fuzz-long  every fuzz target for 10M executions or 2 hours (see tests/run_fuzz.sh)
#   make clean

CC      ?= cc
# every build (the plain one, asan, fuzz) on all cores unless -j is given (GNU make >= 4.3
# honours -j set here; `make test` is what CI runs, and it is built three times)
NPROC   := $(shell nproc 2>/dev/null || echo 2)
ifeq ($(MAKELEVEL),0)
ifeq ($(filter -j%,$(MAKEFLAGS)),)
MAKEFLAGS += -j$(NPROC)
endif
endif
# -std=c11 also keeps GCC from contracting a*b+c into FMAs behind our back
# (-ffp-contract=off in ISO mode); attacks rely on exact signs and clamps.
OPT     ?= -O3 -march=native
SAN     ?=
CFLAGS   = $(OPT) $(SAN) -std=c11 -D_GNU_SOURCE -Wall -Wextra -Wshadow -Wno-unused-parameter -Wno-missing-field-initializers -fopenmp -MMD -MP
PKGS     = libzip libcjson libpng libjpeg libcurl libarchive libcrypto zlib sqlite3 matio cairo fontconfig
# OpenMPI (Debian's libopenmpi-dev, scripts/deps.sh) for `mpirun beard run`; without it beard
# builds and runs in one process, and says so when started under mpirun
MPI_PKG := $(shell pkg-config --exists ompi-c 2>/dev/null && echo ompi-c)
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) $(MPI_PKG) 2>/dev/null) $(if $(MPI_PKG),-DBEARD_MPI)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) $(MPI_PKG) 2>/dev/null)
LDLIBS  += $(PKG_LIBS) -lopenblas -lm -fopenmp
CFLAGS  += $(PKG_CFLAGS)
LDLIBS  += $(SAN)

LIB_DIRS = src/core src/nn src/models src/io src/data src/attacks src/distill src/train src/evaluate src/metrics src/store src/grid src/leaderboard
LIB_SRC  = $(foreach d,$(LIB_DIRS),$(wildcard $(d)/*.c))
CLI_SRC  = $(wildcard src/cli/*.c)
TEST_SRC = $(wildcard tests/test_*.c)
TEST_LIB = tests/harness.c

B = build
LIB_OBJ  = $(LIB_SRC:%.c=$(B)/%.o)
CLI_OBJ  = $(CLI_SRC:%.c=$(B)/%.o)
TEST_BIN = $(TEST_SRC:tests/%.c=$(B)/tests/%)

.PHONY: all test check asan fuzz fuzz-long clean fidelity train-fidelity train-fidelity-resnet18bn zoo-interop distill-fidelity distill-fidelity-decoupled
all: $(B)/beard beard

beard: $(B)/beard
	ln -sf $(B)/beard beard

$(B)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

# the Winograd and direct convolution kernels are written for fused multiply-adds
# (-fexpensive-optimizations: GCC forms FMAs only with it, which -O1 builds lack, and
# the sanitizer build must compute what the optimised one does)
$(B)/src/nn/winograd.o $(B)/src/nn/conv_direct.o: CFLAGS += -ffp-contract=fast -fexpensive-optimizations

$(B)/libbeard.a: $(LIB_OBJ)
	rm -f $@ && ar rcs $@ $^

$(B)/beard: $(CLI_OBJ) $(B)/libbeard.a
	$(CC) $(CFLAGS) -o $@ $(CLI_OBJ) $(B)/libbeard.a $(LDLIBS)

$(B)/tests/%: tests/%.c $(TEST_LIB) $(B)/libbeard.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests -o $@ $< $(TEST_LIB) $(B)/libbeard.a $(LDLIBS)

# the nn kernels once more in double precision, for the gradient check (see src/nn/real.h)
NN64_OBJ = $(wildcard src/nn/*.c)
NN64_OBJ := $(filter-out src/nn/optim.c src/nn/winograd.c src/nn/conv_direct.c src/nn/convplan.c,$(NN64_OBJ))
NN64_OBJ := $(NN64_OBJ:src/nn/%.c=$(B)/nn64/%.o)
$(B)/nn64/%.o: src/nn/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -DNN_REAL_DOUBLE -c $< -o $@
$(B)/tests/test_gradcheck: tests/test_gradcheck.c $(TEST_LIB) $(NN64_OBJ) $(B)/libbeard.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -DNN_REAL_DOUBLE -Itests -o $@ $< $(TEST_LIB) $(NN64_OBJ) $(B)/libbeard.a $(LDLIBS)

# test_nn once more with the vector kernels built for 16 lanes whatever the CPU (the
# compiler splits them where AVX-512 is missing): the paths only AVX-512 builds take are
# then tested on every host, against the naive convolution as the 8-lane ones are
LANES16_OBJ = $(B)/lanes16/winograd.o $(B)/lanes16/conv_direct.o
$(B)/lanes16/%.o: src/nn/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -ffp-contract=fast -fexpensive-optimizations -DBEARD_VEC16 -c $< -o $@
$(B)/tests/test_nn_lanes16: tests/test_nn.c $(TEST_LIB) $(LANES16_OBJ) $(B)/libbeard.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests -o $@ $< $(TEST_LIB) $(LANES16_OBJ) $(B)/libbeard.a $(LDLIBS)
TEST_BIN += $(B)/tests/test_nn_lanes16

tests: $(TEST_BIN) $(B)/beard

# the README's test command
test: all tests
	BEARD=$(B)/beard sh tests/run.sh $(TEST_BIN)
	$(MAKE) asan
	BEARD=$(B)/asan/beard BEARD_SANITIZED=1 sh tests/run.sh $(TEST_BIN:$(B)/%=$(B)/asan/%)
	$(MAKE) fuzz
	sh tests/run_fuzz.sh

check: test

# The full acceptance runs, too slow for the suite (need ../shared, or BEARD_SHARED):
#   fidelity        every attack against torchattacks 3.5.1 on all 761 test images
#   train-fidelity  300 epochs x 3 seeds on the 10-ipc pool file, against PyTorch's figure
#   distill-fidelity  stage 1 end to end: DM, IDM, BACON, DC, DSA, MTT at IPC 1 and 10 on the
#                   subset, beside random real images and (with OFFICIAL=DIR, checkouts of the
#                   official code: DatasetCondensation/, IDM/, BACON/, mtt-distillation/; MTT's
#                   ZCA needs kornia 0.6.3 on PYTHONPATH, IDM and BACON python3-tqdm and
#                   python3-matplotlib, BACON python3-sklearn) the official code in PyTorch;
#                   each set trained 3 times with BEARD's recipe. Hours on 2 cores; resumable
#                   (finished steps are kept in $(B)/distill-fidelity). DISTILL_ARGS="--dm-iters N ..."
#   train-fidelity-resnet18bn  the same recipe with DC's ResNet18BN (train-mode BatchNorm)
#   zoo-interop     test_zoo in full (every case's SGD step, 64 images), then every zoo
#                   architecture's .pth, written by beard, loads in PyTorch (strict)
SHARED ?= ../shared
OFFICIAL ?=
fidelity: $(B)/tests/test_attack_fidelity
	BEARD_SHARED=$(SHARED) BEARD_FIDELITY_N=761 $(B)/tests/test_attack_fidelity

train-fidelity: $(B)/beard
	mkdir -p $(B)/train-fidelity
	$(B)/beard train --data-file $(SHARED)/beard/dataset_pool/res_RandomReal_CIFAR10_ConvNet_10ipc.pt --dataset cifar10 \
		--data $(SHARED)/data --epochs 300 --runs 3 --no-aug --eval-every 50 --log-every 50 \
		--save-path $(B)/train-fidelity --json $(B)/train-fidelity/beard.json
	/usr/bin/python3 tests/scripts/train_fidelity.py --beard-json $(B)/train-fidelity/beard.json

distill-fidelity: $(B)/beard
	/usr/bin/python3 tests/scripts/distill_fidelity.py --beard $(B)/beard --shared $(SHARED) \
		--work $(B)/distill-fidelity $(if $(OFFICIAL),--official $(OFFICIAL)) $(DISTILL_ARGS)
# The decoupled methods (SRe2L, CDA, G-VBSM, DELT) end to end against the PyTorch port of their
# official code: a ResNet-18 teacher squeezed on ../shared's subset, IPC 10 per method with the
# iterations reduced (DECOUPLED_ARGS), SRe2L's relabel of ConvNet students over 3 seeds, random
# real images alike, then FGSM/PGD in both semantics. Hours on 2 cores; outputs in DECOUPLED_OUT.
DECOUPLED_OUT ?= $(B)/distill-fidelity-decoupled
DECOUPLED_ARGS ?=
distill-fidelity-decoupled: $(B)/beard
	/usr/bin/python3 tests/scripts/decoupled_fidelity.py --beard $(B)/beard --data $(SHARED)/data \
		--out $(DECOUPLED_OUT) $(DECOUPLED_ARGS)

train-fidelity-resnet18bn: $(B)/beard
	mkdir -p $(B)/train-fidelity-resnet18bn
	$(B)/beard train --data-file $(SHARED)/beard/dataset_pool/res_RandomReal_CIFAR10_ConvNet_10ipc.pt --dataset cifar10 \
		--data $(SHARED)/data --arch ResNet18BN --epochs 300 --runs 3 --no-aug --eval-every 50 --log-every 50 \
		--save-path $(B)/train-fidelity-resnet18bn --json $(B)/train-fidelity-resnet18bn/beard.json
	/usr/bin/python3 tests/scripts/train_fidelity.py --beard-json $(B)/train-fidelity-resnet18bn/beard.json \
		--reference tests/fixtures/train/reference_ResNet18BN.json

zoo-interop: $(B)/tests/test_zoo
	rm -rf $(B)/zoo-pth && mkdir -p $(B)/zoo-pth
	BEARD_SHARED=$(SHARED) BEARD_ZOO_FULL=1 BEARD_ZOO_SAVE=$(B)/zoo-pth $(B)/tests/test_zoo
	BEARD_SHARED=$(SHARED) /usr/bin/python3 tests/scripts/check_zoo_pth.py --dir $(B)/zoo-pth

# Sanitizer build: same sources at -O2 with frame pointers (the kernels vectorised, so that
# the suite's second run costs a few times the first, not ten; -std=c11 keeps contraction
# off, so the numbers are the -O3 build's)
asan:
	$(MAKE) B=$(B)/asan OPT="-O2 -g -march=native -fno-omit-frame-pointer" \
		SAN="-fsanitize=address,undefined -fno-sanitize-recover=undefined" $(B)/asan/beard $(TEST_BIN:$(B)/%=$(B)/asan/%)

# libFuzzer targets, one per parser (tests/fuzz/fuzz_*.c): the library is compiled once
# with coverage instrumentation and linked into each target
FUZZ_SRC = $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BIN = $(FUZZ_SRC:tests/fuzz/%.c=$(B)/fuzz/%)
FUZZ_CFLAGS = -std=c11 -D_GNU_SOURCE -g -O1 -fsanitize=address,undefined -fopenmp=libgomp $(PKG_CFLAGS)
FUZZ_OBJ = $(LIB_SRC:%.c=$(B)/fuzz/obj/%.o)
fuzz: $(FUZZ_BIN)
$(B)/fuzz/obj/%.o: %.c
	@mkdir -p $(dir $@)
	clang $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -MMD -MP -c $< -o $@
$(B)/fuzz/libbeard.a: $(FUZZ_OBJ)
	rm -f $@ && ar rcs $@ $^
$(B)/fuzz/%: tests/fuzz/%.c tests/fuzz/fuzz_common.h $(B)/fuzz/libbeard.a
	@mkdir -p $(dir $@)
	clang $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $< $(B)/fuzz/libbeard.a $(PKG_LIBS) -lopenblas -lm -lgomp

# every fuzz target for 10 million executions or 2 hours, whichever comes first; the
# executions and findings per target are printed (and kept in build/fuzz/long.txt), and
# any reproducer in build/fuzz/artifacts/ (add it to tests/fuzz/corpus_<name>/)
fuzz-long: fuzz
	FUZZ_TIME=$${FUZZ_TIME:-7200} FUZZ_RUNS=$${FUZZ_RUNS:-10000000} FUZZ_REPORT=$(B)/fuzz/long.txt sh tests/run_fuzz.sh

clean:
	rm -rf $(B) beard

-include $(LIB_OBJ:.o=.d) $(CLI_OBJ:.o=.d) $(NN64_OBJ:.o=.d) $(FUZZ_OBJ:.o=.d) $(LANES16_OBJ:.o=.d)

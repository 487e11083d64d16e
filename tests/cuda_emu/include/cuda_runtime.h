// TEST TOOLING: shadows <cuda_runtime.h> for the CPU emulation (tests/cuda_emu/emu.h)
#pragma once
#include "tests/cuda_emu/emu.h"

/* safetensors.h — the safetensors writer lives in checkpoint/ (the checkpoint
 * library exports with it and includes nothing from src/). */
#ifndef HERD_SRC_SAFETENSORS_H
#define HERD_SRC_SAFETENSORS_H
#include "checkpoint/safetensors.h"
#endif

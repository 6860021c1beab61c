/* All of aellm's public API. */
#ifndef AELLM_AELLM_H
#define AELLM_AELLM_H

#include "aellm/arch.h"
#include "aellm/config.h"
#include "aellm/dtype.h"
#include "aellm/energy.h"
#include "aellm/engine.h"
#include "aellm/error.h"
#include "aellm/evaluate.h"
#include "aellm/gguf.h"
#include "aellm/hardware.h"
#include "aellm/latency.h"
#include "aellm/memory.h"
#include "aellm/model.h"
#include "aellm/quantize.h"
#include "aellm/store.h"
#include "aellm/task.h"
#include "aellm/tokenizer.h"

#endif

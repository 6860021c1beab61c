/* All of aellm's public API. */
#ifndef AELLM_AELLM_H
#define AELLM_AELLM_H

#include "aellm/arch.h"
#include "aellm/dtype.h"
#include "aellm/engine.h"
#include "aellm/error.h"
#include "aellm/gguf.h"
#include "aellm/model.h"
#include "aellm/quantize.h"
#include "aellm/tokenizer.h"

#endif

/* Attaching a vocabulary to a model after it was made (random models). */
#include "model/model.h"

void aellm_model_set_tokenizer(aellm_model *m, aellm_tokenizer *tok)
{
    if (m->tokenizer != tok) aellm_tokenizer_free(m->tokenizer);
    m->tokenizer = tok;
}

/* Training data: a text file for causal-LM training (tokenized whole, BOS
 * first, a held-out slice at its end), or JSONL instruction data
 * ({"prompt", "completion"} per line, the loss on the completion only). Both
 * give batches of B sequences of T inputs, T targets and T loss weights.
 * Batches are drawn in a seeded order that a checkpoint can restore (the
 * position is two integers). */
#ifndef AELLM_TECHNIQUES_FINETUNE_DATA_H
#define AELLM_TECHNIQUES_FINETUNE_DATA_H

#include <stddef.h>
#include <stdint.h>

#include "aellm/tokenizer.h"

typedef struct train_data train_data;

/* Reads `path` (".jsonl": instruction data, else text) and tokenizes it.
 * `heldout` (0..0.5) of it is kept apart for evaluation: the text's last
 * tokens, or every k-th example. Sequences are T tokens (T + 1 with the
 * target). Errors name the file (and line for JSONL); data shorter than one
 * sequence of training and one of held-out text is an error. */
int train_data_load(train_data **out, const char *path, const aellm_tokenizer *tok, int T,
                    double heldout, uint64_t seed);
void train_data_free(train_data *d); /* accepts NULL */

/* Sequences in one pass over the training part (an epoch), and held out. */
int64_t train_data_n_train(const train_data *d);
int64_t train_data_n_heldout(const train_data *d);
int64_t train_data_train_tokens(const train_data *d);
int train_data_is_instructions(const train_data *d);

/* The next B training sequences into inputs, targets, weights (B*T each),
 * in a seeded order reshuffled every epoch; *epoch is the epochs finished
 * so far. */
void train_data_next(train_data *d, int B, int32_t *inputs, int32_t *targets, float *weights,
                     int *epoch);
/* Held-out sequence i (0 <= i < n_heldout). */
void train_data_heldout(const train_data *d, int64_t i, int32_t *inputs, int32_t *targets,
                        float *weights);

/* Where the training order stands, for checkpoints. */
typedef struct {
    int64_t cursor; /* sequences drawn in the current epoch */
    int64_t epoch;
} train_data_pos;
train_data_pos train_data_position(const train_data *d);
void train_data_seek(train_data *d, train_data_pos pos);

#endif

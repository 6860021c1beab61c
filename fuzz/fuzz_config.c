/* Fuzzes the technique configuration (aellm_config_load: JSON of the
 * architecture, fine-tuning and inference stages, include/aellm/config.h)
 * from a file holding the input, in a folder that also holds the
 * calibration and training texts a configuration may name ("calib.txt",
 * "train.txt"). A configuration that parses is checked against a tiny
 * random-weight model, and its shapes, training parameters and canonical
 * JSON are computed; it is never applied (that quantizes or trains). */
#include "aellm/aellm.h"
#include "aellm/train.h"
#include "fuzz_util.h"

static const aellm_model *tiny_model(void)
{
    static aellm_model *m;
    if (m) return m;
    aellm_model_config c = {.dim = 32,
                            .hidden_dim = 64,
                            .n_layers = 2,
                            .n_heads = 4,
                            .n_kv_heads = 2,
                            .head_dim = 8,
                            .vocab_size = 300,
                            .seq_len = 64,
                            .rope_base = 10000.0f,
                            .norm_eps = 1e-5f,
                            .tied_output = 1};
    FZ_CHECK(aellm_model_random(&m, &c, AELLM_DTYPE_F32, 1) == 0);
    fz_write_str("calib.txt", "Once upon a time, there was a little girl named Lily.\n");
    fz_write_str("train.txt", "One day, Tim went to the park. He saw a big red ball.\n");
    return m;
}

static void exercise(const aellm_config *c, const aellm_model *m)
{
    aellm_config_finetunes(c);
    aellm_config_converts(c);
    aellm_config_trains(c);
    aellm_config_arch_fits_routers(c);
    aellm_config_inference_kv_heads(c, aellm_model_config_get(m)->n_kv_heads);
    aellm_train_params p;
    aellm_config_train_params(c, &p);
    aellm_config_uptrain_params(c, &p);
    free(aellm_config_canonical_finetuning(c));
    if (aellm_config_check(c, m)) return; /* what follows assumes a configuration that fits */
    aellm_model_config shape;
    aellm_config_arch_shape(c, m, &shape);
    aellm_config_arch_kv_heads(c, m);
    aellm_config_mla_rank(c, m);
    aellm_config_mla_rope_dim(c, m);
    free(aellm_config_canonical_architecture(c, m));
    free(aellm_config_canonical_inference(c, m));
    char *canon = aellm_config_canonical(c, m);
    FZ_CHECK(canon != NULL);
    free(canon);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const aellm_model *m = tiny_model();
    aellm_config c;
    if (aellm_config_load(&c, fz_write("config.json", data, size)) == 0) exercise(&c, m);
    return 0;
}

/* `aellm train`: fine-tune a model on a text file or JSONL instruction data
 * (full, LoRA, RSLoRA, DoRA, QLoRA) and write the merged model as GGUF. */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "aellm/energy.h"
#include "aellm/hardware.h"
#include "aellm/train.h"
#include "cli/cli.h"

/* The status line; a held-out evaluation ends it, so that its figure stays
 * on screen. */
static void progress(const aellm_train_progress *p, void *user)
{
    char extra[160];
    snprintf(extra, sizeof(extra), "loss %.4f  lr %.2e  %.0f tok/s", p->loss, p->lr,
             p->tokens_per_s);
    if (!isnan(p->heldout))
        snprintf(extra + strlen(extra), sizeof(extra) - strlen(extra), "  held-out %.4f",
                 p->heldout);
    cli_progress_update(user, "step", p->step, p->steps, extra);
    if (!isnan(p->heldout)) cli_progress_end(user);
}

static cJSON *result_json(const aellm_train_result *r, const char *out, double joules,
                          const char *energy_src, int measured)
{
    cJSON *o = aellm_train_result_json(r);
    cJSON_AddStringToObject(o, "output", out);
    cJSON *e = cJSON_AddObjectToObject(o, "energy");
    cJSON_AddNumberToObject(e, "joules", joules);
    cJSON_AddStringToObject(e, "source", energy_src);
    cJSON_AddBoolToObject(e, "measured", measured);
    return o;
}

int cmd_train(int argc, char **argv)
{
    const char *model = NULL, *tok = NULL, *data = NULL, *out = NULL;
    int json = 0, quiet = 0, threads = 0;
    aellm_train_params p;
    aellm_train_params_default(&p);
    float heldout = (float)p.heldout, epochs = (float)p.epochs;
    uint64_t seed = p.seed;
    cli_opt opts[] = {
        {"model", 'm', OPT_STR, &model, "model to fine-tune (default: bundled)"},
        {"tokenizer", 'z', OPT_STR, &tok, "tokenizer.bin for a llama2.c checkpoint"},
        {"data", 'd', OPT_STR, &data,
         "training data: a text file, or .jsonl of {\"prompt\", \"completion\"} (required)"},
        {"output", 'o', OPT_STR, &out, "write the merged model here as GGUF (required)"},
        {"adapter-out", 0, OPT_STR, &p.adapter_out,
         "also write the unmerged adapter as llama.cpp's LoRA GGUF (lora, rslora, qlora)"},
        {"method", 0, OPT_STR, &p.method, "full, lora (default), rslora, dora, qlora"},
        {"rank", 'r', OPT_INT, &p.rank, "adapter rank (8)"},
        {"alpha", 0, OPT_FLOAT, &p.alpha, "adapter alpha (default 2 x rank)"},
        {"targets", 0, OPT_STR, &p.targets,
         "matrices with adapters: q,k,v,o,gate,up,down or all (q,k,v,o)"},
        {"dropout", 0, OPT_FLOAT, &p.dropout,
         "dropout on the adapters' input, lora/rslora/qlora (0)"},
        {"freeze-embeddings", 0, OPT_FLAG, &p.freeze_embeddings,
         "full: keep the token embedding and output fixed"},
        {"seq-len", 0, OPT_INT, &p.seq_len, "tokens per sequence (model's context, at most 256)"},
        {"batch", 'b', OPT_INT, &p.batch, "sequences per micro-batch (8)"},
        {"accum", 0, OPT_INT, &p.accum, "micro-batches per optimiser step (1)"},
        {"steps", 0, OPT_INT, &p.steps, "optimiser steps (default: --epochs over the data)"},
        {"epochs", 0, OPT_FLOAT, &epochs, "passes over the training data when --steps is 0 (1)"},
        {"lr", 0, OPT_FLOAT, &p.lr, "peak learning rate (1e-3 adapters, 3e-4 full)"},
        {"warmup", 0, OPT_INT, &p.warmup, "warm-up steps (default 5 % of the steps)"},
        {"weight-decay", 0, OPT_FLOAT, &p.weight_decay, "AdamW weight decay (0)"},
        {"clip", 0, OPT_FLOAT, &p.clip, "gradient-norm ceiling, 0 = none (1.0)"},
        {"heldout", 0, OPT_FLOAT, &heldout, "share of the data held out for evaluation (0.1)"},
        {"eval-every", 0, OPT_INT, &p.eval_every, "held-out loss every N steps (0: start and end)"},
        {"eval-max", 0, OPT_INT, &p.eval_max, "held-out sequences per evaluation (0: all)"},
        {"seed", 's', OPT_U64, &seed, "data order and adapter initialisation (1)"},
        {"checkpoint", 0, OPT_STR, &p.checkpoint, "checkpoint file (default OUT.ckpt)"},
        {"checkpoint-every", 0, OPT_INT, &p.checkpoint_every,
         "write a checkpoint every N steps and at the end (0: none)"},
        {"resume", 0, OPT_FLAG, &p.resume,
         "continue a killed run from its checkpoint (same options and seed)"},
        {"threads", 't', OPT_INT, &threads, "threads (default: all cores)"},
        {"quiet", 'q', OPT_FLAG, &quiet, "no progress line (there is none off a terminal)"},
        {"json", 0, OPT_FLAG, &json, "print the summary as JSON"},
        {0}};
    cli_command cmd = {
        "train", "Fine-tune a model (full, LoRA, RSLoRA, DoRA, QLoRA) and write it as GGUF.",
        "-d DATA -o OUT.gguf [-m MODEL] [--method lora --rank 8 --targets q,k,v,o] [options]",
        "Causal-LM training on a text file (its last --heldout share kept apart), or on JSONL\n"
        "instruction data with the loss on the completion only. AdamW with gradient clipping,\n"
        "linear warm-up then cosine decay; deterministic for a seed. The adapters are merged\n"
        "into the weights: the GGUF written is an F32 model that llama.cpp runs.",
        opts};
    int rc = cli_parse(&cmd, argc, argv);
    if (rc) return rc < 0 ? 1 : 0;
    if (!data) return cli_fail("train", "no training data given (-d FILE)");
    if (!out) return cli_fail("train", "no output file given (-o OUT.gguf)");
    if (p.rank < 1) return cli_fail("train", "--rank %d: must be at least 1", p.rank);
    if (p.batch < 1 || p.accum < 1 || p.steps < 0 || epochs <= 0 || threads < 0 || p.seq_len < 0 ||
        p.eval_every < 0 || p.eval_max < 0 || p.warmup < 0)
        return cli_fail("train", "--batch, --accum must be >= 1; --steps, --epochs, counts >= 0");
    if (!(p.lr >= 0) || !(heldout >= 0 && heldout <= 0.5f))
        return cli_fail("train", "--lr must be >= 0 and --heldout in [0, 0.5]");
    if (threads > 0) omp_set_num_threads(threads);
    static char ckpt[4200];
    if (!p.checkpoint && (p.checkpoint_every > 0 || p.resume)) {
        snprintf(ckpt, sizeof(ckpt), "%s.ckpt", out);
        p.checkpoint = ckpt;
    }
    if (p.checkpoint_every < 0) return cli_fail("train", "--checkpoint-every must be >= 0");
    p.heldout = heldout, p.epochs = epochs, p.seed = seed;
    cli_progress bar;
    cli_progress_start(&bar, json || quiet);
    p.progress = progress, p.progress_user = &bar;

    aellm_model *m = NULL, *trained = NULL;
    aellm_energy_meter *meter = NULL;
    aellm_hw_profile hw;
    aellm_train_result res;
    aellm_energy_reading energy = {0};
    int status = 1;
    if (cli_open_model("train", &m, model, tok)) goto done;
    if (aellm_hw_detect(&hw, 0, threads) || aellm_energy_meter_new(&meter, &hw, 0) ||
        aellm_energy_meter_start(meter)) {
        cli_fail_last("train");
        goto done;
    }
    int trained_rc = aellm_train(&trained, m, data, &p, &res);
    cli_progress_end(&bar);
    if (trained_rc) {
        cli_fail_last("train");
        goto done;
    }
    aellm_energy_meter_stop(meter, &energy);
    if (aellm_model_save_gguf(trained, out, -1)) {
        cli_fail_last("train");
        goto done;
    }
    int measured = !(aellm_energy_meter_sources(meter) & AELLM_ENERGY_MODEL);
    if (json)
        cli_print_json(
            result_json(&res, out, energy.joules, aellm_energy_meter_source_name(meter), measured));
    else
        printf("wrote %s: %s, %d steps, %lld tokens at %.0f tokens/s in %.1f s\n"
               "train loss %.4f; held-out loss %.4f -> %.4f (perplexity %.3f)\n"
               "%lld trainable parameters, optimizer state %.1f KiB, peak memory %.1f MiB; "
               "energy %.1f J (%s)\n",
               out, res.method, res.steps, (long long)res.tokens, res.tokens_per_s, res.seconds,
               res.train_loss, res.heldout_loss_before, res.heldout_loss, res.heldout_ppl,
               (long long)res.trainable, res.optimizer_bytes / 1024.0, res.peak_bytes / 1048576.0,
               energy.joules, aellm_energy_meter_source_name(meter));
    status = 0;
done:
    aellm_energy_meter_free(meter);
    aellm_model_free(trained);
    aellm_model_free(m);
    return status;
}

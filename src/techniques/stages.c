/* The order of the stages (DESIGN.md §5: architecture → fine-tune →
 * quantize): each one's input is the one before it's output. */
#include "techniques/stage.h"

const aellm_stage *const *aellm_stages(int *n)
{
    static const aellm_stage *const list[] = {&aellm_stage_architecture, &aellm_stage_finetuning,
                                              &aellm_stage_inference};
    *n = (int)(sizeof(list) / sizeof(list[0]));
    return list;
}

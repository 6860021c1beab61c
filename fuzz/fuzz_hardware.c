/* Fuzzes the hardware profile reader (aellm_hw_load on a JSON file:
 * hardware/NAME.json, or what `aellm predict --calibrate` writes, with its
 * kernel and attention rates by type name). A profile that loads is written
 * back as JSON and its identity computed; loading that JSON again must
 * succeed, since it is what aellm writes. */
#include <cjson/cJSON.h>

#include "aellm/error.h"
#include "aellm/hardware.h"
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static aellm_hw_profile p, q; /* 4 KiB each: off the stack */
    if (aellm_hw_load(&p, fz_write("hw.json", data, size), NULL)) return 0;
    free(aellm_hw_identity_json(&p));
    cJSON *j = aellm_hw_to_json(&p);
    FZ_CHECK(j != NULL);
    char *text = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    FZ_CHECK(text != NULL);
    int rc = aellm_hw_load(&q, fz_write_str("hw_back.json", text), NULL);
    if (rc) fprintf(stderr, "reloading %s: %s\n", text, aellm_error_last());
    FZ_CHECK(rc == 0);
    free(text);
    return 0;
}

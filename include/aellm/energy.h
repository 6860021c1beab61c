/* Energy of a stretch of work. Real counters where they can be read: RAPL
 * (/sys/class/powercap, CPU packages) and NVML (libnvidia-ml, loaded at run
 * time: nvmlDeviceGetTotalEnergyConsumption of every GPU). Otherwise an
 * estimate from the hardware profile's power model: idle_w x wall time +
 * active_w_per_core x CPU time of this process. Every reading names its
 * source; an estimate is never called a measurement. */
#ifndef AELLM_ENERGY_H
#define AELLM_ENERGY_H

#include "aellm/hardware.h"

#ifdef __cplusplus
extern "C" {
#endif

enum {
    AELLM_ENERGY_RAPL = 1 << 0,
    AELLM_ENERGY_NVML = 1 << 1,
    AELLM_ENERGY_MODEL = 1 << 2, /* the power-model estimate */
};

typedef struct aellm_energy_meter aellm_energy_meter;

/* Opens every readable counter (`allow` masks the sources; 0 = all); falls
 * back to the power model of `hw` (copied) when none is readable. */
int aellm_energy_meter_new(aellm_energy_meter **out, const aellm_hw_profile *hw, int allow);
void aellm_energy_meter_free(aellm_energy_meter *m); /* accepts NULL */

/* The sources in use (AELLM_ENERGY_* bits) and their names ("rapl",
 * "nvml", "rapl+nvml", "model"). */
int aellm_energy_meter_sources(const aellm_energy_meter *m);
const char *aellm_energy_meter_source_name(const aellm_energy_meter *m);

typedef struct {
    double joules;
    double wall_s, cpu_s;
} aellm_energy_reading;

/* Marks the start of a stretch; `stop` gives its energy (counter wrap-around
 * handled). Start/stop pairs may repeat. */
int aellm_energy_meter_start(aellm_energy_meter *m);
int aellm_energy_meter_stop(aellm_energy_meter *m, aellm_energy_reading *out);

#ifdef __cplusplus
}
#endif
#endif

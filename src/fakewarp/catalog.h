/* catalog.h - the model catalog fakewarp answers GetFeatureModelChoices with (spec
 * §4.3 field names; ids from the Jan–Feb 2026 lists in spec §4.2), and the display name
 * a finished event reports for a model id. Static, read-only data. */
#ifndef W2A_FAKE_CATALOG_H
#define W2A_FAKE_CATALOG_H

#include <json-c/json.h>

typedef struct w2a_fake_model {
  const char *id;
  const char *display;
  const char *base_model;
  const char *reasoning; /* reasoningLevel */
  const char *provider;
  int vision;
  double cost, quality, speed;
  int request_multiplier;
} w2a_fake_model;

/* NULL when the id is not in the catalog. */
const w2a_fake_model *w2a_fake_model_find(const char *id);
/* The agentMode object: {defaultId, choices:[...]} (caller puts). */
json_object *w2a_fake_catalog_json(void);

#endif

/* catalog.c - see catalog.h. */
#include "fakewarp/catalog.h"

#include <string.h>

static const w2a_fake_model models[] = {
    {"auto", "auto", "auto", "Off", "UNKNOWN", 1, 0.5, 0.7, 0.7, 1},
    {"auto-efficient", "auto (efficient)", "auto", "Off", "UNKNOWN", 1, 0.3, 0.5, 0.9, 1},
    {"auto-genius", "auto (genius)", "auto", "Off", "UNKNOWN", 1, 0.9, 0.95, 0.5, 1},
    {"claude-4-sonnet", "Claude Sonnet 4", "claude 4 sonnet", "Off", "ANTHROPIC", 1, 0.6, 0.6, 0.7,
     1},
    {"claude-4.1-opus", "Claude Opus 4.1", "claude 4.1 opus", "Off", "ANTHROPIC", 1, 1.0, 0.8, 0.4,
     1},
    {"claude-4-5-haiku", "Claude Haiku 4.5", "claude 4.5 haiku", "Off", "ANTHROPIC", 1, 0.2, 0.6,
     0.9, 1},
    {"claude-4-5-sonnet", "Claude Sonnet 4.5", "claude 4.5 sonnet", "Off", "ANTHROPIC", 1, 0.6,
     0.85, 0.7, 1},
    {"claude-4-5-sonnet-thinking", "Claude Sonnet 4.5 (thinking)", "claude 4.5 sonnet", "High",
     "ANTHROPIC", 1, 0.7, 0.9, 0.5, 1},
    {"claude-4-5-opus", "Claude Opus 4.5", "claude 4.5 opus", "Off", "ANTHROPIC", 1, 0.8, 0.95, 0.5,
     1},
    {"claude-4-5-opus-thinking", "Claude Opus 4.5 (thinking)", "claude 4.5 opus", "High",
     "ANTHROPIC", 1, 0.9, 0.97, 0.4, 1},
    {"gpt-5", "GPT-5", "gpt-5", "Medium", "OPENAI", 1, 0.5, 0.85, 0.6, 1},
    {"gpt-5-low-reasoning", "GPT-5 (low reasoning)", "gpt-5", "Low", "OPENAI", 1, 0.4, 0.8, 0.7, 1},
    {"gpt-5 (high reasoning)", "GPT-5 (high reasoning)", "gpt-5", "High", "OPENAI", 0, 0.6, 0.9,
     0.4, 1},
    {"gpt-5-1-codex-medium", "GPT-5.1 Codex (medium)", "gpt-5.1-codex", "Medium", "OPENAI", 1, 0.5,
     0.88, 0.6, 1},
    {"gemini-2.5-pro", "Gemini 2.5 Pro", "gemini 2.5 pro", "Off", "GOOGLE", 1, 0.5, 0.8, 0.7, 1},
    {"gemini-3-pro", "Gemini 3 Pro", "gemini 3 pro", "Off", "GOOGLE", 1, 0.6, 0.9, 0.6, 1},
};

const w2a_fake_model *w2a_fake_model_find(const char *id) {
  for (size_t i = 0; id && i < sizeof models / sizeof models[0]; i++)
    if (!strcmp(models[i].id, id)) return &models[i];
  return NULL;
}

json_object *w2a_fake_catalog_json(void) {
  json_object *am = json_object_new_object();
  json_object_object_add(am, "defaultId", json_object_new_string("auto-genius"));
  json_object *ch = json_object_new_array();
  for (size_t i = 0; i < sizeof models / sizeof models[0]; i++) {
    const w2a_fake_model *m = &models[i];
    json_object *o = json_object_new_object();
    json_object_object_add(o, "displayName", json_object_new_string(m->display));
    json_object_object_add(o, "baseModelName", json_object_new_string(m->base_model));
    json_object_object_add(o, "id", json_object_new_string(m->id));
    json_object_object_add(o, "reasoningLevel", json_object_new_string(m->reasoning));
    json_object *um = json_object_new_object();
    json_object_object_add(um, "creditMultiplier", NULL);
    json_object_object_add(um, "requestMultiplier", json_object_new_int(m->request_multiplier));
    json_object_object_add(o, "usageMetadata", um);
    json_object_object_add(o, "description", NULL);
    json_object_object_add(o, "disableReason", NULL);
    json_object_object_add(o, "visionSupported", json_object_new_boolean(m->vision));
    json_object *sp = json_object_new_object();
    json_object_object_add(sp, "cost", json_object_new_double(m->cost));
    json_object_object_add(sp, "quality", json_object_new_double(m->quality));
    json_object_object_add(sp, "speed", json_object_new_double(m->speed));
    json_object_object_add(o, "spec", sp);
    json_object_object_add(o, "provider", json_object_new_string(m->provider));
    json_object_array_add(ch, o);
  }
  json_object_object_add(am, "choices", ch);
  return am;
}

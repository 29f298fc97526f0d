/* graphql.h - POST /graphql/v2?op=<Operation> (spec §1.4, §4.3): GetRequestLimitInfo
 * (the account's real counters), GetFeatureModelChoices (catalog.h), GetOrCreateUser,
 * GetUser. The operation is taken from ?op= or the body's operationName; the query text
 * itself is not parsed (the answers carry every field the real clients ask for). */
#ifndef W2A_FAKE_GRAPHQL_H
#define W2A_FAKE_GRAPHQL_H

#include "fakewarp/fakewarp.h"

void w2a_fake_graphql(w2a_fake *f, w2a_http_req *r);

#endif

/* control.h - the test-only control routes under /_fakewarp/ (enabled by default,
 * --no-control turns them off; docs/fakewarp.md lists them): stats, the log of received
 * requests, scenarios, accounts, reset, the mailbox, direct token minting, faults.
 *
 * Account specs come as JSON objects {email, refresh_token?, quota?, scenario?,
 * unlimited?, blocked?, quota_in_stream?, rotate?, refresh_period_s?, used?, revoked?};
 * the same parser serves the configuration file. */
#ifndef W2A_FAKE_CONTROL_H
#define W2A_FAKE_CONTROL_H

#include "fakewarp/fakewarp.h"

void w2a_fake_control(w2a_fake *f, w2a_http_req *r);
/* Add or update the account(s) in j (an object or an array of objects). */
int w2a_fake_accounts_apply(w2a_fake *f, json_object *j, w2a_err *err);

#endif

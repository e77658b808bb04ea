/* SPDX-License-Identifier: MIT */
/*
 * files: the HTTP routes that move files, both served and received by
 * nginx.  Prefix files_.
 *
 * GET /artifacts/{task}/{file}: the owner of the task gets the file
 *   through nginx's X-Accel-Redirect (the agent never streams it).
 * PUT /uploads/{name}: nginx has written the body to a file; the agent
 *   adopts it as an upload of the caller's (store/uploads.h).
 * r is authenticated; each answers r.
 */
#ifndef IA_FILES_H
#define IA_FILES_H

#include "core/config.h"
#include "http/http.h"

void files_artifact(struct http_req *r, const struct config *cfg);
void files_upload(struct http_req *r, const struct config *cfg);

#endif

/* SPDX-License-Identifier: MIT */
/*
 * assets: the per-owner registry of the licensed or manually supplied
 * files InsTaG needs and the agent may not download for its users (the
 * Basel Face Model, the EasyPortrait weight, the released pre-training
 * checkpoints).  Prefix assets_.
 *
 * An owner registers each kind of asset once (docs/api.md,
 * instag.register_asset); instag.place_assets copies them onto a pod.
 * The kinds, and where each goes in the InsTaG checkout:
 *
 *	bfm2009		data_utils/face_tracking/3DMM/01_MorphableModel.mat
 *	easyportrait	data_utils/easyportrait/fpn-fp-512.pth
 *	pretrain_face	output/pretrain_<E>/chkpnt_ema_face_latest.pth
 *	pretrain_mouth	output/pretrain_<E>/chkpnt_ema_mouth_latest.pth
 *
 * The pretrain kinds take an extractor E (deepspeech, ave, esperanto,
 * hubert); the others take none.  A kind and its extractor name a slot
 * ("bfm2009", "pretrain_face-ave"); registering a slot again replaces it.
 *
 * On disk, below <artifact_dir>/assets/ (0700):
 *
 *	<owner dir>/			0700; "u-" and 32 hex digits of
 *					SHA-256(owner), one per owner
 *	<owner dir>/<slot>.json		{"kind","extractor","sha256","size",
 *					 "file","source","task_id",
 *					 "registered_at"}, 0600
 *	<owner dir>/<slot>-<16 hex>.data the bytes ("file" above), 0600 (a
 *					hard link of an upload keeps its 0640)
 *	<owner dir>/.lock		serialises commits and deletes
 *	<owner dir>/.tmp-<tag>		a file being registered
 *
 * A commit writes the data file under a fresh name, then the record
 * (through a temporary file and rename), then removes the slot's other
 * data files: a crash leaves the old asset or the new one, never a
 * record naming a missing file (an orphaned data file is removed by the
 * slot's next commit or delete).  Nothing is ever looked up across
 * owners: every function takes the owner and looks only in its
 * directory.  Nothing here keeps state; every function is safe from any
 * thread.
 */
#ifndef IA_ASSETS_H
#define IA_ASSETS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "core/config.h"
#include "lib/attrs.h"

#define ASSETS_SLOT_MAX 40		/* a slot name and its NUL */
#define ASSETS_MAX_BYTES (8LL << 30)	/* largest asset: 8 GiB */

struct asset_info {
	char *kind;		/* owned */
	char *extractor;	/* owned; NULL for kinds without one */
	char *sha256;		/* owned: 64 lower-case hex digits */
	char *path;		/* owned: absolute path of the data file */
	char *remote_path;	/* owned: where it goes in the checkout */
	char *source;		/* owned: "upload:<id>" or "url:<host>" */
	char *task_id;		/* owned: the task that registered it, or "" */
	char *registered_at;	/* owned: ISO 8601 */
	int64_t size;
};

/*
 * Check kind and extractor and write the slot name to slot.  0, or -1
 * with *why (static): an unknown kind, a pretrain kind without a valid
 * extractor, or an extractor given to a kind that takes none.
 */
WARN_UNUSED_RESULT
int assets_slot(const char *kind, const char *extractor,
    char slot[ASSETS_SLOT_MAX], const char **why);

/* The kind's path in the checkout (for a valid kind and extractor, see
 * assets_slot) into buf; false when invalid. */
bool assets_remote_path(const char *kind, const char *extractor, char *buf,
    size_t len);

/*
 * The asset kind a path of the checkout is (the reverse of
 * assets_remote_path): true with kind (static) and extractor ("" for
 * none; ASSETS_SLOT_MAX bytes) set, false when no kind goes there.
 */
bool assets_kind_of(const char *remote_path, const char **kind,
    char extractor[ASSETS_SLOT_MAX]);

/*
 * A path for a file about to be registered for owner, tag naming it
 * ([A-Za-z0-9-]{1,64}, e.g. a task id): <owner dir>/.tmp-<tag>, the
 * directories made as needed.  0 with *path (caller frees), or -1 with
 * *err (caller frees; it names paths: for logs only).
 */
WARN_UNUSED_RESULT
int assets_tmp_path(const struct config *cfg, const char *owner,
    const char *tag, char **path, char **err);

/*
 * Register the file tmp_path (made at assets_tmp_path(); consumed: moved
 * into place, or removed on failure) as owner's asset of kind/extractor,
 * replacing the slot's previous one.  sha256 and size describe the file;
 * source and task_id (may be NULL) are recorded.  0 with *out filled
 * (caller clears) and *replaced, or -1 with *err (caller frees; for
 * logs).
 */
WARN_UNUSED_RESULT
int assets_commit(const struct config *cfg, const char *owner,
    const char *kind, const char *extractor, const char *tmp_path,
    const char *sha256, int64_t size, const char *source,
    const char *task_id, struct asset_info *out, bool *replaced,
    char **err);

/*
 * Register owner's upload upload_id as kind/extractor: the upload's file
 * is hard-linked (copied when that is impossible), then committed as
 * assets_commit() does.  expect_sha256 (NULL: none) must equal the
 * upload's SHA-256.  task_id ([A-Za-z0-9-]{1,64}, or NULL) names the
 * temporary file, as the tag of assets_tmp_path(), and is recorded.  0
 * with *out (caller clears) and *replaced; 1: no such upload of owner's
 * (someone else's id is absent too); 2: the upload's SHA-256 is not
 * expect_sha256; -1 with *err (caller frees; for logs).
 */
WARN_UNUSED_RESULT
int assets_from_upload(const struct config *cfg, const char *owner,
    const char *kind, const char *extractor, const char *upload_id,
    const char *expect_sha256, const char *task_id, struct asset_info *out,
    bool *replaced, char **err);

/*
 * owner's asset of kind/extractor.  0: *out filled (caller clears); 1:
 * none registered (or kind/extractor invalid); -1: its record or file is
 * unreadable or corrupt.  *out is empty unless 0 is returned.
 */
WARN_UNUSED_RESULT
int assets_get(const struct config *cfg, const char *owner,
    const char *kind, const char *extractor, struct asset_info *out);

/*
 * Every asset of owner, sorted by slot, into *out (n entries; caller
 * frees with assets_list_free).  A corrupt record is skipped.  0, or -1
 * with *err (caller frees; for logs) when the directory is unreadable.
 */
WARN_UNUSED_RESULT
int assets_list(const struct config *cfg, const char *owner,
    struct asset_info **out, size_t *n, char **err);

/* Remove owner's asset of kind/extractor.  0: removed; 1: there was none
 * (or kind/extractor invalid); -1 with *err (caller frees; for logs). */
WARN_UNUSED_RESULT
int assets_delete(const struct config *cfg, const char *owner,
    const char *kind, const char *extractor, char **err);

/* SHA-256 and size of the regular file path (symlinks refused).  0, or -1
 * with *err (caller frees; for logs). */
WARN_UNUSED_RESULT
int assets_hash_file(const char *path, char sha256_hex[65], int64_t *size,
    char **err);

/* The asset as JSON {"kind","extractor"?,"sha256","size","path","source",
 * "registered_at"} (new reference; path is the remote path). */
json_object *assets_info_json(const struct asset_info *a);

/* Free what a holds and zero it.  NULL ok. */
void assets_info_clear(struct asset_info *a);
void assets_list_free(struct asset_info *list, size_t n);

#endif

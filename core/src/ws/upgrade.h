/* ws/upgrade.h: the HTTP side of an upgrade (upgrade.c), kept apart from libwebsockets'
 * headers (its HTTP status names clash with llhttp's). */
#ifndef TH_WS_UPGRADE_H
#define TH_WS_UPGRADE_H

#include "base/buf.h"
#include "runtime/host.h"

int th_ws__handover(th_ctx *ctx, th_buf *head);

#endif

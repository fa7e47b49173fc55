/* session_events.c: access to a session's event log for streams that resume from an id. */
#include "session/session.h"

#include "session/session_int.h"

struct events_log *session_events(struct session *s)
{
    return s->log;
}

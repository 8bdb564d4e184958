#include "pooler/backend/expected_replies.h"

namespace pooler::backend {

void ExpectedReplies::push(Expected e) { queue_.push_back(std::move(e)); }

void ExpectedReplies::synthesize(std::string bytes, bool client_parse) {
  if (queue_.empty()) {
    sink_.emit_synthetic(bytes);
    if (client_parse) {
      sink_.client_parse_done(true);
    }
    return;
  }
  Expected e;
  e.reply = Reply::Synthetic;
  e.client_parse = client_parse;
  e.synthetic = std::move(bytes);
  queue_.push_back(std::move(e));
}

void ExpectedReplies::pop_front() { queue_.pop_front(); }

void ExpectedReplies::emit_ready_synthetic() {
  while (!queue_.empty() && queue_.front().reply == Reply::Synthetic) {
    const std::string bytes = std::move(queue_.front().synthetic);
    const bool client_parse = queue_.front().client_parse;
    queue_.pop_front();
    sink_.emit_synthetic(bytes);
    if (client_parse) {
      sink_.client_parse_done(true);
    }
  }
}

// After an error in the extended protocol, PostgreSQL discards messages until Sync, simple
// Query messages included: their replies will never come.
void ExpectedReplies::skip_to_sync() {
  while (!queue_.empty() && queue_.front().reply != Reply::Sync) {
    const Expected& e = queue_.front();
    if ((e.reply == Reply::ParseComplete || e.reply == Reply::Query) && e.statement != 0) {
      sink_.statement_failed(e.statement);
    }
    const bool client_parse = e.client_parse;
    queue_.pop_front();
    if (client_parse) {
      sink_.client_parse_done(false);
    }
  }
}

Matched ExpectedReplies::on_reply(char type) {
  Matched m;
  if (type == 'N' || type == 'A' || type == 'S') {
    m.disposition = front_hidden() && !queue_.front().forward_async ? Disposition::Swallow
                                                                     : Disposition::Forward;
    return m;
  }
  if (queue_.empty()) {
    return m;  // unsolicited (a FATAL before the backend closes): the client should see it
  }
  Expected& front = queue_.front();
  m.disposition = front.hidden ? Disposition::Swallow : Disposition::Forward;
  switch (front.reply) {
    case Reply::Query:
      if (type == 'E' && front.statement != 0) {
        // A PREPARE pgmux sent for a statement: it does not exist on this backend.
        sink_.statement_failed(front.statement);
      } else if (type == 'E' && front.hidden && !front.tolerate_error) {
        m.error_in_hidden_query = true;
      }
      m.probe_row = front.probe && type == 'D';
      if (type == 'Z') {
        if (front.swallow_ready) {
          m.disposition = Disposition::Swallow;  // the next entry gives the client its Z
          pop_front();
          return m;
        }
        if (front.forward_ready) {
          m.disposition = Disposition::Forward;
        }
        m.completed_sync = true;
        m.completed_hidden = front.hidden && !front.forward_ready;
        m.completed_probe = front.probe;
        pop_front();
      }
      return m;
    case Reply::Sync:
      if (type == 'Z') {
        m.completed_sync = true;
        m.completed_hidden = front.hidden;
        pop_front();
      }
      return m;
    case Reply::Synthetic:
      // The owner emits synthetic entries once they reach the front; if one is still
      // there, emit it now so the order holds.
      emit_ready_synthetic();
      return on_reply(type);
    case Reply::ParseComplete:
    case Reply::BindComplete:
    case Reply::CloseComplete:
    case Reply::Describe:
    case Reply::Execute:
      break;
  }
  if (type == 'E') {
    // The failing message's reply is this error, shown to the client even when the
    // message was ours (a hidden Parse that fails means the client's Bind fails too).
    m.disposition = Disposition::Forward;
    if (front.reply == Reply::ParseComplete && front.statement != 0) {
      sink_.statement_failed(front.statement);
    }
    if (front.reply == Reply::BindComplete) {
      m.failed_bind_statement = front.statement;
    }
    const bool client_parse = front.client_parse;
    queue_.pop_front();
    if (client_parse) {
      sink_.client_parse_done(false);
    }
    skip_to_sync();
    return m;
  }
  bool done = false;
  switch (front.reply) {
    case Reply::ParseComplete: done = type == '1'; break;
    case Reply::BindComplete: done = type == '2'; break;
    case Reply::CloseComplete: done = type == '3'; break;
    case Reply::Describe: done = type == 'T' || type == 'n'; break;
    case Reply::Execute: done = type == 'C' || type == 'I' || type == 's'; break;
    default: break;
  }
  if (done) {
    if (front.reply == Reply::ParseComplete && front.statement != 0) {
      sink_.statement_prepared(front.statement);
    }
    const bool client_parse = front.client_parse;
    pop_front();
    if (client_parse) {
      sink_.client_parse_done(true);
    }
  } else if (type == 'Z') {
    // Out of step (should not happen): resynchronise on the next Sync or Query.
    while (!queue_.empty() && queue_.front().reply != Reply::Sync &&
           queue_.front().reply != Reply::Query) {
      const Expected& e = queue_.front();
      if (e.reply == Reply::ParseComplete && e.statement != 0) {
        sink_.statement_failed(e.statement);
      }
      queue_.pop_front();
    }
    if (!queue_.empty()) {
      m.disposition = queue_.front().hidden ? Disposition::Swallow : Disposition::Forward;
      m.completed_sync = true;
      m.completed_hidden = queue_.front().hidden;
      pop_front();
    }
  }
  return m;
}

}  // namespace pooler::backend

#pragma once
// The replies a backend still owes, in the order PostgreSQL will send them (PgDog's idea).
// Every message forwarded to or injected into a backend that produces a reply pushes an
// entry; each reply frame is matched against the front entry. Under transaction pooling a
// backend may go back to its pool only when this is empty.
//
// Hidden entries belong to messages pgmux injected (a Parse for a statement the backend
// lacks, a SET bringing the backend to the client's settings): their replies are swallowed.
// Synthetic entries are replies pgmux answers itself (a ParseComplete for a statement the
// backend already has): their bytes are emitted when they reach the front, keeping order.

#include <cstdint>
#include <deque>
#include <string>

namespace pooler::backend {

enum class Reply : std::uint8_t {
  ParseComplete,  // '1'
  BindComplete,   // '2'
  CloseComplete,  // '3'
  Describe,       // 't'? then 'T' or 'n'
  Execute,        // rows, then 'C', 'I' or 's'
  Sync,           // 'Z'
  Query,          // anything, then 'Z' (simple Query, FunctionCall)
  Synthetic,      // bytes pgmux sends itself, in order
};

struct Expected {
  Reply reply = Reply::Sync;
  bool hidden = false;
  bool client_parse = false;    // the client's own named Parse: its outcome is reported
  bool forward_async = false;   // hidden, but ParameterStatus/Notice still reach the client
  bool tolerate_error = false;  // hidden, and an error in it is not the client's concern
  bool probe = false;           // hidden Query whose one-value result pgmux reads
  bool swallow_ready = false;   // the client's Query whose ReadyForQuery the next entry gives
  bool forward_ready = false;   // hidden, but its ReadyForQuery is the client's (see above)
  std::uint64_t statement = 0;  // ParseComplete of a named statement: its id, to undo on failure
  std::string synthetic;        // Synthetic only: the bytes to send
};

// Options of a hidden entry.
struct HiddenOptions {
  bool forward_async = false;
  bool tolerate_error = false;
  bool probe = false;
  bool forward_ready = false;
};

// What to do with one reply frame.
enum class Disposition : std::uint8_t { Forward, Swallow };

// Outcome of matching one reply frame, for the owner to act on.
struct Matched {
  Disposition disposition = Disposition::Forward;
  bool completed_sync = false;    // a ReadyForQuery ended a Sync or Query entry
  bool completed_hidden = false;  // ... and that entry was pgmux's own
  bool completed_probe = false;   // ... and it was a probe
  bool probe_row = false;         // a DataRow of a probe: the owner reads it
  bool error_in_hidden_query = false;
  std::uint64_t failed_bind_statement = 0;  // an error answered the Bind of this statement
};

class ExpectedReplies {
 public:
  // Callbacks for entries dropped without their reply (after an error PostgreSQL skips to
  // Sync) and for synthetic bytes reaching the front.
  class Sink {
   public:
    virtual void emit_synthetic(const std::string& bytes) = 0;
    virtual void statement_failed(std::uint64_t statement) = 0;
    // A ParseComplete for `statement` arrived: the text is valid SQL for this server.
    virtual void statement_prepared(std::uint64_t statement) = 0;
    // The outcome of the client's own named Parse (in order): false when PostgreSQL
    // refused or skipped it.
    virtual void client_parse_done(bool ok) = 0;

   protected:
    ~Sink() = default;
  };

  explicit ExpectedReplies(Sink& sink) : sink_(sink) {}

  void expect(Reply reply, std::uint64_t statement = 0) {
    Expected e;
    e.reply = reply;
    e.statement = statement;
    push(std::move(e));
  }
  // The client's Query whose ReadyForQuery is held back: a hidden entry with
  // `forward_ready` must follow and gives the client its ReadyForQuery, so whatever that
  // entry reports (ParameterStatus) reaches the client before the query looks finished.
  void expect_query_then_more() {
    Expected e;
    e.reply = Reply::Query;
    e.swallow_ready = true;
    push(std::move(e));
  }
  // The ParseComplete of the client's own named Parse of `statement`.
  void expect_client_parse(std::uint64_t statement) {
    Expected e;
    e.reply = Reply::ParseComplete;
    e.client_parse = true;
    e.statement = statement;
    push(std::move(e));
  }
  void expect_hidden(Reply reply, std::uint64_t statement = 0, HiddenOptions options = {}) {
    Expected e;
    e.reply = reply;
    e.hidden = true;
    e.forward_async = options.forward_async;
    e.tolerate_error = options.tolerate_error;
    e.probe = options.probe;
    e.forward_ready = options.forward_ready;
    e.statement = statement;
    push(std::move(e));
  }
  // Sends `bytes` now when nothing is owed, else when every earlier reply has passed.
  // `client_parse`: these bytes answer the client's named Parse (reported like one).
  void synthesize(std::string bytes, bool client_parse = false);

  // Matches one reply frame of `type`. Async messages ('N', 'A', 'S') never complete
  // anything; they are swallowed only inside a hidden entry.
  Matched on_reply(char type);

  // Emits the synthetic entries now at the front. The owner calls it after forwarding
  // each reply frame, so synthetic bytes follow the reply that preceded them.
  void emit_ready_synthetic();
  bool has_ready_synthetic() const {
    return !queue_.empty() && queue_.front().reply == Reply::Synthetic;
  }

  bool empty() const { return queue_.empty(); }
  std::size_t size() const { return queue_.size(); }
  bool front_hidden() const { return !queue_.empty() && queue_.front().hidden; }
  bool front_probe() const { return !queue_.empty() && queue_.front().probe; }
  // Makes the front entry pgmux's own: its replies no longer reach the client.
  void hide_front() {
    if (!queue_.empty()) {
      queue_.front().hidden = true;
    }
  }
  // Forgets everything (the connection is gone).
  void clear() { queue_.clear(); }

 private:
  void push(Expected e);
  void pop_front();
  void skip_to_sync();

  Sink& sink_;
  std::deque<Expected> queue_;
};

}  // namespace pooler::backend

#include "pooler/backend/expected_replies.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

namespace pooler::backend {
namespace {

// Records what ExpectedReplies hands back to its owner.
class RecordingSink : public ExpectedReplies::Sink {
 public:
  void emit_synthetic(const std::string& bytes) override { emitted.push_back(bytes); }
  void statement_failed(std::uint64_t statement) override { failed.push_back(statement); }
  void statement_prepared(std::uint64_t statement) override { prepared.push_back(statement); }
  void client_parse_done(bool ok) override { parses += ok ? '+' : '-'; }

  std::vector<std::string> emitted;
  std::vector<std::uint64_t> failed;
  std::vector<std::uint64_t> prepared;
  std::string parses;  // '+' / '-' per client Parse outcome, in order
};

class ExpectedRepliesTest : public ::testing::Test {
 protected:
  // Feeds reply types in order; returns their dispositions as "F"/"S" letters.
  std::string feed(std::string_view types) {
    std::string out;
    for (const char t : types) {
      const Matched m = replies.on_reply(t);
      out += m.disposition == Disposition::Forward ? 'F' : 'S';
      if (m.completed_sync) {
        ++syncs;
      }
      if (m.error_in_hidden_query) {
        ++hidden_errors;
      }
      if (m.failed_bind_statement != 0) {
        failed_binds.push_back(m.failed_bind_statement);
      }
    }
    return out;
  }

  // What the client sends for one pipelined Parse/Bind/Describe/Execute/Sync.
  void expect_extended(std::uint64_t statement = 0) {
    replies.expect(Reply::ParseComplete, statement);
    replies.expect(Reply::BindComplete);
    replies.expect(Reply::Describe);
    replies.expect(Reply::Execute);
    replies.expect(Reply::Sync);
  }

  RecordingSink sink;
  ExpectedReplies replies{sink};
  int syncs = 0;
  int hidden_errors = 0;
  std::vector<std::uint64_t> failed_binds;
};

// A new queue owes nothing.
TEST_F(ExpectedRepliesTest, StartsEmpty) {
  EXPECT_TRUE(replies.empty());
  EXPECT_EQ(replies.size(), 0u);
  EXPECT_FALSE(replies.front_hidden());
  EXPECT_FALSE(replies.has_ready_synthetic());
}

// A simple Query stays owed through rows and completions until ReadyForQuery.
TEST_F(ExpectedRepliesTest, SimpleQueryEndsAtReadyForQuery) {
  replies.expect(Reply::Query);
  EXPECT_EQ(feed("TDDC"), "FFFF");
  EXPECT_FALSE(replies.empty());
  EXPECT_EQ(syncs, 0);
  EXPECT_EQ(feed("Z"), "F");
  EXPECT_TRUE(replies.empty());
  EXPECT_EQ(syncs, 1);
}

// A multi-statement Query with an error in the middle still ends only at ReadyForQuery.
TEST_F(ExpectedRepliesTest, SimpleQueryWithErrorEndsAtReadyForQuery) {
  replies.expect(Reply::Query);
  EXPECT_EQ(feed("TDCE"), "FFFF");
  EXPECT_FALSE(replies.empty());
  EXPECT_EQ(feed("Z"), "F");
  EXPECT_TRUE(replies.empty());
  EXPECT_EQ(hidden_errors, 0);  // the client's own query
  EXPECT_TRUE(sink.failed.empty());
}

// An empty Query string answers EmptyQueryResponse then ReadyForQuery.
TEST_F(ExpectedRepliesTest, EmptyQuery) {
  replies.expect(Reply::Query);
  EXPECT_EQ(feed("IZ"), "FF");
  EXPECT_TRUE(replies.empty());
}

// Two Queries sent back to back need two ReadyForQuery.
TEST_F(ExpectedRepliesTest, PipelinedSimpleQueries) {
  replies.expect(Reply::Query);
  replies.expect(Reply::Query);
  feed("CZ");
  EXPECT_EQ(replies.size(), 1u);
  feed("CZ");
  EXPECT_TRUE(replies.empty());
  EXPECT_EQ(syncs, 2);
}

// Pipelined Parse/Bind/Describe/Execute/Sync x3 is matched reply by reply.
TEST_F(ExpectedRepliesTest, PipelinedExtendedQueries) {
  for (int i = 0; i < 3; ++i) {
    expect_extended();
  }
  EXPECT_EQ(replies.size(), 15u);
  for (int i = 0; i < 3; ++i) {
    // ParseComplete, BindComplete, RowDescription, rows, CommandComplete, ReadyForQuery.
    EXPECT_EQ(feed("12TDDC"), "FFFFFF");
    EXPECT_EQ(replies.size(), static_cast<std::size_t>(15 - 5 * i - 4));
    EXPECT_EQ(feed("Z"), "F");
    EXPECT_EQ(replies.size(), static_cast<std::size_t>(15 - 5 * (i + 1)));
  }
  EXPECT_TRUE(replies.empty());
  EXPECT_EQ(syncs, 3);
  EXPECT_TRUE(sink.failed.empty());
}

// Describe of a statement answers ParameterDescription then RowDescription or NoData.
TEST_F(ExpectedRepliesTest, DescribeStatementTwoReplies) {
  replies.expect(Reply::Describe);
  replies.expect(Reply::Describe);
  replies.expect(Reply::Sync);
  EXPECT_EQ(feed("tT"), "FF");
  EXPECT_EQ(replies.size(), 2u);
  EXPECT_EQ(feed("tn"), "FF");
  EXPECT_EQ(replies.size(), 1u);
  feed("Z");
  EXPECT_TRUE(replies.empty());
}

// Execute ends at CommandComplete, EmptyQueryResponse or PortalSuspended.
TEST_F(ExpectedRepliesTest, ExecuteEndings) {
  for (const char end : {'C', 'I', 's'}) {
    replies.expect(Reply::Execute);
    feed("DD");
    EXPECT_EQ(replies.size(), 1u) << end;
    feed(std::string(1, end));
    EXPECT_TRUE(replies.empty()) << end;
  }
}

// Close answers CloseComplete.
TEST_F(ExpectedRepliesTest, CloseComplete) {
  replies.expect(Reply::CloseComplete);
  replies.expect(Reply::Sync);
  EXPECT_EQ(feed("3Z"), "FF");
  EXPECT_TRUE(replies.empty());
}

// Parse + Flush without Sync: owed until ParseComplete arrives, then nothing is owed.
TEST_F(ExpectedRepliesTest, FlushWithoutSync) {
  replies.expect(Reply::ParseComplete, 7);
  EXPECT_FALSE(replies.empty());
  EXPECT_EQ(feed("1"), "F");
  EXPECT_TRUE(replies.empty());
  EXPECT_EQ(syncs, 0);
  EXPECT_TRUE(sink.failed.empty());
}

// An error mid-pipeline skips to the Sync, reporting each dropped named Parse, and the
// next pipeline after that Sync is matched normally.
TEST_F(ExpectedRepliesTest, ErrorSkipsToSyncAndReportsSkippedParses) {
  replies.expect(Reply::ParseComplete, 1);
  replies.expect(Reply::BindComplete);
  replies.expect(Reply::Execute);
  replies.expect(Reply::ParseComplete, 2);  // skipped by PostgreSQL
  replies.expect(Reply::ParseComplete, 0);  // unnamed: nothing to undo
  replies.expect(Reply::Describe);
  replies.expect(Reply::ParseComplete, 3);  // skipped
  replies.expect(Reply::Sync);
  expect_extended(4);  // after the Sync: runs normally

  EXPECT_EQ(feed("12D"), "FFF");
  EXPECT_EQ(feed("E"), "F");  // Execute fails
  EXPECT_EQ(sink.failed, (std::vector<std::uint64_t>{2, 3}));
  EXPECT_EQ(replies.size(), 1u + 5u);  // the Sync, then the next pipeline
  EXPECT_EQ(feed("Z"), "F");
  EXPECT_EQ(syncs, 1);
  EXPECT_EQ(feed("12nCZ"), "FFFFF");
  EXPECT_TRUE(replies.empty());
  EXPECT_EQ(sink.failed, (std::vector<std::uint64_t>{2, 3}));
}

// A failing named Parse reports its own statement, then the rest up to Sync.
TEST_F(ExpectedRepliesTest, FailedParseReportsItself) {
  replies.expect(Reply::ParseComplete, 9);
  replies.expect(Reply::BindComplete);
  replies.expect(Reply::Execute);
  replies.expect(Reply::Sync);
  EXPECT_EQ(feed("E"), "F");
  EXPECT_EQ(sink.failed, std::vector<std::uint64_t>{9});
  EXPECT_EQ(feed("Z"), "F");
  EXPECT_TRUE(replies.empty());
}

// An error on a hidden Parse (ours) is still shown: the client's Bind fails because of it.
TEST_F(ExpectedRepliesTest, ErrorOnHiddenParseForwarded) {
  replies.expect_hidden(Reply::ParseComplete, 5);
  replies.expect(Reply::BindComplete);
  replies.expect(Reply::Execute);
  replies.expect(Reply::Sync);
  EXPECT_TRUE(replies.front_hidden());
  EXPECT_EQ(feed("E"), "F");
  EXPECT_EQ(sink.failed, std::vector<std::uint64_t>{5});
  EXPECT_EQ(feed("Z"), "F");
  EXPECT_TRUE(replies.empty());
}

// Regression (was a bug): a simple Query sent after an extended-protocol error but before the Sync is
// discarded by PostgreSQL (postgres.c keeps ignore_till_sync through 'Q'; docs: "reads
// and discards messages until a Sync is reached"), so only one ReadyForQuery comes.
// skip_to_sync() stops at the Query entry, so the 'Z' completes the Query and the Sync
// entry stays owed forever.
// After an extended error, a Query before the Sync is skipped too: one 'Z' clears all.
TEST_F(ExpectedRepliesTest, ErrorSkipsQueryBeforeSync) {
  replies.expect(Reply::ParseComplete, 1);
  replies.expect(Reply::Query);  // discarded by PostgreSQL
  replies.expect(Reply::Sync);
  EXPECT_EQ(feed("E"), "F");
  EXPECT_EQ(feed("Z"), "F");
  EXPECT_TRUE(replies.empty()) << replies.size() << " entries still owed";
}

// Hidden entries (our Parse, our SET) are swallowed, including async messages meanwhile.
TEST_F(ExpectedRepliesTest, HiddenEntriesSwallowed) {
  replies.expect_hidden(Reply::ParseComplete, 3);
  replies.expect_hidden(Reply::Query);
  replies.expect(Reply::BindComplete);
  replies.expect(Reply::Sync);
  EXPECT_TRUE(replies.front_hidden());
  EXPECT_EQ(feed("NS1"), "SSS");  // a notice and a ParameterStatus inside the hidden Parse
  EXPECT_TRUE(replies.front_hidden());
  EXPECT_EQ(feed("SCZ"), "SSS");  // the hidden SET: ParameterStatus, CommandComplete, ReadyForQuery
  EXPECT_EQ(syncs, 1);
  EXPECT_FALSE(replies.front_hidden());
  EXPECT_EQ(feed("NS2Z"), "FFFF");  // the client's own: everything forwarded
  EXPECT_TRUE(replies.empty());
  EXPECT_TRUE(sink.failed.empty());
}

// Async messages never complete an entry and are forwarded with nothing owed.
TEST_F(ExpectedRepliesTest, AsyncMessagesNeverComplete) {
  EXPECT_EQ(feed("ANS"), "FFF");
  replies.expect(Reply::Sync);
  EXPECT_EQ(feed("ANS"), "FFF");
  EXPECT_EQ(replies.size(), 1u);
  EXPECT_EQ(syncs, 0);
}

// An error inside a hidden Query is swallowed and flagged for the owner.
TEST_F(ExpectedRepliesTest, ErrorInHiddenQueryFlagged) {
  replies.expect_hidden(Reply::Query);
  replies.expect(Reply::Query);
  EXPECT_EQ(feed("E"), "S");
  EXPECT_EQ(hidden_errors, 1);
  EXPECT_EQ(feed("Z"), "S");
  EXPECT_EQ(feed("EZ"), "FF");  // the client's own error: forwarded, not flagged
  EXPECT_EQ(hidden_errors, 1);
  EXPECT_TRUE(replies.empty());
}

// An error on the PREPARE pgmux sent for a statement reports that statement as failed.
TEST_F(ExpectedRepliesTest, ErrorInPrepareQueryReportsStatement) {
  replies.expect(Reply::Query, 8);
  EXPECT_EQ(feed("E"), "F");
  EXPECT_EQ(sink.failed, std::vector<std::uint64_t>{8});
  EXPECT_EQ(hidden_errors, 0);
  EXPECT_EQ(feed("Z"), "F");
  EXPECT_TRUE(replies.empty());
}

// A PREPARE Query that succeeds reports nothing.
TEST_F(ExpectedRepliesTest, SuccessfulPrepareQueryReportsNothing) {
  replies.expect(Reply::Query, 8);
  EXPECT_EQ(feed("CZ"), "FF");
  EXPECT_TRUE(sink.failed.empty());
  EXPECT_TRUE(replies.empty());
}

// An error answering a Bind names the statement bound, once; other errors name none.
TEST_F(ExpectedRepliesTest, ErrorOnBindNamesStatement) {
  replies.expect(Reply::BindComplete, 6);
  replies.expect(Reply::Execute);
  replies.expect(Reply::Sync);
  replies.expect(Reply::Execute);
  replies.expect(Reply::Sync);
  EXPECT_EQ(feed("E"), "F");
  EXPECT_EQ(failed_binds, std::vector<std::uint64_t>{6});
  EXPECT_TRUE(sink.failed.empty());  // the statement itself still exists
  feed("Z");
  feed("EZ");  // an Execute error is not a Bind error
  EXPECT_EQ(failed_binds, std::vector<std::uint64_t>{6});
  EXPECT_TRUE(replies.empty());
}

// synthesize() with nothing owed emits at once.
TEST_F(ExpectedRepliesTest, SynthesizeOnEmptyEmitsAtOnce) {
  replies.synthesize("1");
  EXPECT_EQ(sink.emitted, std::vector<std::string>{"1"});
  EXPECT_TRUE(replies.empty());
}

// synthesize() behind owed replies waits until they have passed, keeping order.
TEST_F(ExpectedRepliesTest, SynthesizeWaitsForEarlierReplies) {
  replies.expect(Reply::ParseComplete);
  replies.synthesize("1");  // pgmux answers the second Parse itself
  replies.expect(Reply::BindComplete);
  replies.synthesize("C+Z");
  EXPECT_TRUE(sink.emitted.empty());
  EXPECT_FALSE(replies.has_ready_synthetic());
  replies.emit_ready_synthetic();  // nothing ready yet
  EXPECT_TRUE(sink.emitted.empty());

  EXPECT_EQ(feed("1"), "F");
  EXPECT_TRUE(sink.emitted.empty());  // the owner forwards the reply first...
  EXPECT_TRUE(replies.has_ready_synthetic());
  replies.emit_ready_synthetic();  // ...then emits what became ready
  EXPECT_EQ(sink.emitted, std::vector<std::string>{"1"});

  EXPECT_EQ(feed("2"), "F");
  replies.emit_ready_synthetic();
  EXPECT_EQ(sink.emitted, (std::vector<std::string>{"1", "C+Z"}));
  EXPECT_TRUE(replies.empty());
}

// Consecutive synthetic entries at the front are all emitted, in order.
TEST_F(ExpectedRepliesTest, ConsecutiveSyntheticEmittedTogether) {
  replies.expect(Reply::Sync);
  replies.synthesize("a");
  replies.synthesize("b");
  replies.expect(Reply::Sync);
  feed("Z");
  replies.emit_ready_synthetic();
  EXPECT_EQ(sink.emitted, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(replies.size(), 1u);
}

// A reply arriving while a synthetic entry is still at the front emits it first.
TEST_F(ExpectedRepliesTest, ReplyBehindUnemittedSyntheticEmitsItFirst) {
  replies.expect(Reply::Sync);
  replies.synthesize("x");
  replies.expect(Reply::ParseComplete);
  feed("Z");  // the owner forgets emit_ready_synthetic()
  EXPECT_TRUE(sink.emitted.empty());
  EXPECT_EQ(feed("1"), "F");
  EXPECT_EQ(sink.emitted, std::vector<std::string>{"x"});
  EXPECT_TRUE(replies.empty());
}

// A synthetic entry between a failing message and its Sync is dropped: PostgreSQL would
// have discarded the message it stands for.
TEST_F(ExpectedRepliesTest, ErrorDropsSyntheticBeforeSync) {
  replies.expect(Reply::Execute);
  replies.synthesize("1");
  replies.expect(Reply::Sync);
  replies.synthesize("after");
  EXPECT_EQ(feed("E"), "F");
  EXPECT_EQ(feed("Z"), "F");
  replies.emit_ready_synthetic();
  EXPECT_EQ(sink.emitted, std::vector<std::string>{"after"});
  EXPECT_TRUE(replies.empty());
}

// A reply with nothing owed (a FATAL before the backend closes) is forwarded.
TEST_F(ExpectedRepliesTest, UnsolicitedReplyForwarded) {
  EXPECT_EQ(feed("E"), "F");
  EXPECT_TRUE(replies.empty());
}

// A ReadyForQuery while extended replies are still owed resynchronises on the Sync.
TEST_F(ExpectedRepliesTest, UnexpectedReadyForQueryResynchronises) {
  replies.expect(Reply::ParseComplete, 4);
  replies.expect(Reply::BindComplete);
  replies.expect(Reply::Sync);
  replies.expect(Reply::Query);
  EXPECT_EQ(feed("Z"), "F");
  EXPECT_EQ(syncs, 1);
  EXPECT_EQ(sink.failed, std::vector<std::uint64_t>{4});
  EXPECT_EQ(replies.size(), 1u);
}

// clear() forgets everything without reporting.
TEST_F(ExpectedRepliesTest, ClearForgets) {
  expect_extended(1);
  replies.synthesize("x");
  replies.clear();
  EXPECT_TRUE(replies.empty());
  EXPECT_TRUE(sink.emitted.empty());
  EXPECT_TRUE(sink.failed.empty());
}

// The client's own named Parses report their outcome in order: accepted, answered by pgmux,
// refused, or skipped after an earlier error.
TEST_F(ExpectedRepliesTest, ClientParseOutcomesInOrder) {
  replies.expect_client_parse(1);
  replies.synthesize("1", /*client_parse=*/true);
  replies.expect(Reply::Sync);
  EXPECT_EQ(feed("1"), "F");
  replies.emit_ready_synthetic();  // as the owner does after forwarding each reply
  EXPECT_EQ(sink.parses, "++");    // the synthetic one follows the real one
  EXPECT_EQ(sink.prepared, std::vector<std::uint64_t>{1});
  EXPECT_EQ(feed("Z"), "F");

  replies.expect_client_parse(2);
  replies.synthesize("1", /*client_parse=*/true);
  replies.expect(Reply::Sync);
  EXPECT_EQ(feed("EZ"), "FF");
  EXPECT_EQ(sink.parses, "++--");  // refused, then skipped until Sync
  EXPECT_EQ(sink.failed, std::vector<std::uint64_t>{2});
}

// A ReadyForQuery that ends pgmux's own entry says so, so the owner does not take it for
// the client's.
TEST_F(ExpectedRepliesTest, HiddenCompletionIsMarked) {
  replies.expect_hidden(Reply::Query);
  replies.expect(Reply::Query);
  Matched m = replies.on_reply('Z');
  EXPECT_TRUE(m.completed_sync);
  EXPECT_TRUE(m.completed_hidden);
  m = replies.on_reply('Z');
  EXPECT_TRUE(m.completed_sync);
  EXPECT_FALSE(m.completed_hidden);
}

// A hidden entry may let ParameterStatus through and shrug off its errors.
TEST_F(ExpectedRepliesTest, HiddenOptions) {
  HiddenOptions options;
  options.forward_async = true;
  options.tolerate_error = true;
  replies.expect_hidden(Reply::Query, 0, options);
  EXPECT_EQ(feed("S"), "F");
  EXPECT_FALSE(replies.on_reply('E').error_in_hidden_query);
  EXPECT_EQ(feed("TDCZ"), "SSSS");
}

}  // namespace
}  // namespace pooler::backend

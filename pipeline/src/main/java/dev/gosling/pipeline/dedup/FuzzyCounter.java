package dev.gosling.pipeline.dedup;

/**
 * The counters of fuzzy dedup, in the order they are reported. Tasks emit them as rows {@code (code, value)} next to
 * their data rows (never through accumulators), and the driver sums them (or takes the maximum), so every counter is
 * exact and independent of partitioning and of task retries.
 */
enum FuzzyCounter {
    /** Documents read. */
    INPUT_DOCS("fuzzy_input_docs", false),
    /** Documents with no token (empty, or only spaces and punctuation): no shingle, never fuzzy duplicates. */
    DOCS_WITHOUT_SHINGLES("fuzzy_docs_without_shingles", false),
    /** Documents shingled by characters (mostly CJK or other scripts written without spaces). */
    DOCS_CHAR_SHINGLED("fuzzy_docs_char_shingled", false),
    /** Shingles hashed (windows, repeats included). */
    SHINGLES("fuzzy_shingles", false),
    /** LSH buckets with two or more documents. */
    SHARED_BUCKETS("fuzzy_shared_buckets", false),
    /** Members of the largest LSH bucket. */
    LARGEST_BUCKET("fuzzy_largest_bucket", true),
    /** Buckets with more than max_bucket_size members. */
    BUCKETS_CAPPED("fuzzy_buckets_capped", false),
    /** Bucket memberships left out by the cap (a document counts once per capped bucket it was left out of). */
    BUCKET_MEMBERS_CAPPED("fuzzy_bucket_members_capped", false),
    /** Distinct candidate pairs (a bucket member and the bucket's smallest id). */
    CANDIDATE_PAIRS("fuzzy_candidate_pairs", false),
    /** Candidate pairs whose exact Jaccard similarity is below the threshold (dropped; 0 without verification). */
    PAIRS_BELOW_THRESHOLD("fuzzy_pairs_below_threshold", false),
    /** Large-star/small-star rounds of connected components. */
    CC_ROUNDS("fuzzy_cc_rounds", true),
    /** Components with two or more documents. */
    CLUSTERS("fuzzy_clusters", false),
    /** Documents removed as fuzzy duplicates (every member of a component but its smallest id). */
    DUPLICATES("fuzzy_duplicates", false),
    /** Documents kept. */
    KEPT("fuzzy_kept", false);

    final String key;
    /** Combine partition values by maximum rather than by sum. */
    final boolean max;

    FuzzyCounter(String key, boolean max) {
        this.key = key;
        this.max = max;
    }
}

/**
 * Names and type URIs of the evidence packet format. Everything a third-party verifier needs to know
 * about the layout is here (lib/evidence/verify.ts imports nothing from the rest of fabric).
 *
 *   <evidence-dir>/<run-id>/
 *     run.json                      the run record (contracts/run.schema.json)
 *     manifest.sha256               `sha256sum` lines over every other file (sorted, C locale)
 *     nodes/<safe-node-id>/
 *       manifest.json               the node record (contracts/manifest.schema.json)
 *       stdout.log, stderr.log      redacted output (only for a stream that had output)
 *       statements.jsonl            in-toto Statements v1, one per line: SLSA provenance v1, fabric node predicate (unsigned packets)
 *       attestations.intoto.jsonl   the same statements in DSSE envelopes, one per line           (signed packets)
 *     signatures/                   NOT covered by manifest.sha256 (they sign it)
 *       <key-id>.sig                raw 64-byte ed25519 signature of manifest.sha256
 *       <key-id>.pub                the signer's public key (PEM), for convenience only: trust your own copy
 *       <key-id>.asc                armored detached GPG signature of manifest.sha256
 *       <key-id>.pub.asc            the GPG signer's exported public key, for convenience only
 *       INCOMPLETE                  present while fewer signatures than required exist
 *     .partial/                     NOT covered: output of nodes still running (left behind by a killed run)
 */
export const RUN_FILE = 'run.json';
export const MANIFEST_FILE = 'manifest.sha256';
export const NODES_DIR = 'nodes';
export const SIGNATURES_DIR = 'signatures';
export const PARTIAL_DIR = '.partial';
export const INCOMPLETE_MARKER = 'INCOMPLETE';
export const NODE_MANIFEST_FILE = 'manifest.json';
/**
 * A node's two in-toto statements (SLSA provenance, then the fabric predicate), one JSON document per
 * line. Unsigned packets: the Statements themselves. Signed packets: each wrapped in a DSSE envelope,
 * which is the in-toto attestation bundle format (JSON Lines of envelopes, `.intoto.jsonl`).
 */
export const STATEMENTS_FILE = 'statements.jsonl';
export const ATTESTATION_BUNDLE_FILE = 'attestations.intoto.jsonl';
/** Names of a node's log files (written only when the stream had output). */
export const LOG_FILES = { stdout: 'stdout.log', stderr: 'stderr.log' } as const;
/** sha256 of no bytes: the digest recorded for a stream with no output (no file is written for it). */
export const EMPTY_SHA256 = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';

/** Top-level entries of a packet that manifest.sha256 does not cover. */
export const UNCOVERED = [MANIFEST_FILE, SIGNATURES_DIR, PARTIAL_DIR] as const;

export const FORMAT_VERSION = 1;
export const RUN_KIND = 'fabric.run';
export const NODE_KIND = 'fabric.node';

export const INTOTO_STATEMENT_TYPE = 'https://in-toto.io/Statement/v1';
export const INTOTO_PAYLOAD_TYPE = 'application/vnd.in-toto+json';
export const SLSA_PROVENANCE_TYPE = 'https://slsa.dev/provenance/v1';
/**
 * Type URIs defined by fabric. They are identifiers, not links (in-toto allows unresolvable URIs);
 * the predicate's shape is contracts/fabric-predicate.schema.json.
 */
export const FABRIC_PREDICATE_TYPE = 'urn:fabric:predicate:node:v1';
export const FABRIC_BUILD_TYPE = 'urn:fabric:buildtype:task:v1';
export const FABRIC_BUILDER_ID = 'urn:fabric:builder:local';

/** Node statuses, in the order `fabric evidence ls` shows their counts. */
export const NODE_STATUSES = ['ok', 'cached', 'failed', 'cancelled', 'denied', 'skipped-after-failure'] as const;
/** Run statuses. `interrupted` is also the status of a run still in progress (the file says "not finished"). */
export const RUN_STATUSES = ['ok', 'failed', 'denied', 'interrupted'] as const;

/** Schema file names under contracts/. */
export const SCHEMAS = {
  run: 'run.schema.json',
  manifest: 'manifest.schema.json',
  fabricPredicate: 'fabric-predicate.schema.json',
  statement: 'intoto-statement.schema.json',
  slsa: 'slsa-provenance.schema.json',
  dsse: 'dsse-envelope.schema.json',
} as const;

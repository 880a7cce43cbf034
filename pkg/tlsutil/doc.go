// Package tlsutil gives every gRPC connection of a ringtrain cluster mutual
// TLS (mTLS), and generates a certificate authority (CA) and node
// certificates for a test cluster.
//
// # What is protected
//
// When a Config names a certificate, its key and a CA bundle, every gRPC
// connection (coordinator to worker, worker to coordinator, worker to its
// right ring neighbour) runs TLS 1.3 with certificates checked in both
// directions:
//
//   - Confidentiality and integrity of everything on those connections:
//     join requests, model state, shards, steps, commits and the gradient
//     frames of the ring all-reduce.
//   - Authenticity of both ends. A server accepts a connection only from a
//     client that presents a certificate signed by the CA and valid now
//     (tls.RequireAndVerifyClientCert); a client accepts a server only if the
//     server's certificate is signed by the CA, valid now, and names the
//     cluster's shared DNS name [ServerName] ("ringtrain").
//
// Membership of the training cluster therefore equals possession of a private
// key whose certificate the CA signed: a process without one can neither join
// (its Join RPC never reaches the coordinator) nor send a gradient frame (its
// ring stream is refused at the handshake), and a worker will not send its
// gradients to a server that cannot prove membership.
//
// # Why a shared server name
//
// Members dial each other by the address they advertise in gossip: usually an
// IP that a container runtime or Kubernetes assigns when the pod starts, long
// after the certificates were made. Certificates with IP SANs would have to
// be issued per pod at start-up. Instead every node certificate carries the
// DNS SAN "ringtrain" (plus its own name, "localhost", 127.0.0.1 and ::1) and
// every client verifies the server against that name whatever address it
// dialled. The trust decision ringtrain needs is "is this a member of my
// cluster", which the CA signature answers; which member it is comes from the
// protocol (worker ids, ring generation), not from the certificate. The CA is
// what separates clusters: give each cluster its own CA.
//
// # What is not protected
//
//   - Gossip (memberlist, port 7946, TCP and UDP) does not use these
//     certificates. It is encrypted and authenticated by the memberlist
//     keyring (the gossip key) instead; configure both.
//   - The metrics endpoint is plain HTTP. Keep it on a private network.
//   - The CA private key (ca-key.pem) signs new members: whoever holds it can
//     join the cluster. Keep it off the nodes; ship each node only ca.pem,
//     its own certificate and its own key.
//   - There is no revocation. A stolen node key is valid until it expires;
//     issue short-lived certificates, or replace the CA, to evict a node.
//   - Certificates are read when credentials are built (at start-up); a
//     renewed certificate takes effect when the process restarts.
//
// # Configuration
//
// A Config is filled from flags (see [Config.Bind]) and, for fields the flags
// leave empty, from the environment variables RINGTRAIN_TLS_CERT,
// RINGTRAIN_TLS_KEY and RINGTRAIN_TLS_CA ([Config.FromEnv]). With none set,
// TLS is off and connections are plaintext; setting only some is an error.
// [Generate] (and the gen-certs command line, [GenCertsMain]) writes a CA
// and node certificates for a test cluster.
package tlsutil

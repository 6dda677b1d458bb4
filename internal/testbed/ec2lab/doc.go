// Package ec2lab is the data plane of EC2 instances in tests. moto (see
// internal/testbed/motoserver) plays the EC2 control plane but only pretends to run
// instances; a Plane watches moto and, for each instance moto says is
// running, brings up a real lab node (internal/testbed/lab: its own network
// namespace, sshd and dockerd) at the instance's private IP, so that code
// which launches instances and then logs in to them over SSH can be tested
// end to end without AWS.
//
// Every Poll (300 ms), the Plane lists the instances of one subnet
// (DescribeInstances, filter subnet-id) and
//   - for each pending or running instance without a node, adds a lab node
//     named after the instance id at its PrivateIpAddress, whose root accepts
//     the public key of the instance's key pair (KeyName) and no other (an
//     instance launched without a key pair gets a node that takes the lab's
//     own key, Lab.PrivateKeyFile, as lab.NodeOptions has it); up to
//     Options.Parallel nodes come up at once;
//   - for each instance that is stopping, stopped, shutting-down or
//     terminated, or no longer listed, removes its node;
//   - gives no node to an instance that Options.Unreachable picks (to test
//     a caller that must give up waiting for SSH); it is asked on every poll
//     while the instance has no node.
//
// The Plane only ever creates and removes lab nodes: it never dials, pings
// or connects to an address that moto returns (moto's public IPs are
// made up and may belong to someone). Bringing up a node that fails is
// recorded, as an event and in Err, and not retried; tests check Err.
//
// # The subnet a test must create
//
// Create the VPC and the subnet with the lab's CIDR, Lab.Subnet()
// (198.18.N.0/24); Start checks that the subnet lies within it. moto
// 5.2.5 hands out private IPs in a subnet like this:
//   - sequentially from the fourth address: the first instance of a /24 gets
//     .4, the next .5, ... up to .254. On creating a subnet moto takes its
//     first three host addresses (.1, .2, .3, the ones AWS reserves) from
//     its allocator and never hands them out; .0 and .255 are not host
//     addresses. So .1, the lab's gateway on the host, is never chosen by
//     moto itself.
//   - but moto accepts any address of the subnet that a caller asks for
//     explicitly (RunInstances PrivateIpAddress, including .0, .1, .2 and
//     .255, which real EC2 rejects), and a network interface created without
//     an address (CreateNetworkInterface) gets a random one in the whole
//     CIDR, .1 included. The Plane therefore refuses, as a failure in Err, an
//     instance whose private IP is the lab's gateway, the network or
//     broadcast address, or outside the lab's subnet.
//   - a terminated instance keeps its address (it stays listed with it), and
//     moto does not hand the address out again, unless the instance was
//     launched with a network interface spec saying DeleteOnTermination: then
//     the next instance gets it at once, while the terminated one is still
//     listed. A new instance may so get the address of a node still being
//     removed; the Plane then waits for the removal before adding its node.
//     A stopped and restarted instance keeps its address.
//
// # Other moto behaviour (5.2.5) worth knowing
//
//   - RunInstances answers with state pending, but the instance is running at
//     once: the first DescribeInstances already says running. A caller that
//     waits for running never waits; there is no pending phase to observe.
//     stop goes straight to stopped and terminate to terminated (no stopping
//     or shutting-down); terminated instances stay listed until moto is
//     reset.
//   - DescribeInstanceAttribute(userData) returns the user data exactly as
//     given to RunInstances: the base64 text the caller sent (the Go SDK
//     does not encode UserData itself), so decoding it once gives the
//     script back.
//   - DescribeKeyPairs with IncludePublicKey=true returns the public key in
//     OpenSSH authorized_keys format, for imported keys (ImportKeyPair, the
//     material as given, comment and trailing newline included) as for keys
//     moto generated (CreateKeyPair). That is where a node's authorized key
//     comes from.
//   - A public IP that moto reports for an instance is made up; the Plane
//     ignores it, and tests must not connect to it either.
package ec2lab

package shmring

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// dyingAddr is the address of the producer that dieMidFrame kills.
const dyingAddr = "10.0.0.9:7000"

// dieMidFrame is a left neighbour (in a child process) that sends one frame
// of generation 1 into the segment of SHMRING_TO and is killed with SIGKILL
// in the middle of it, where SHMRING_DIE says: "publish" (the payload is
// copied, the commit word not stored yet: a worker killed while copying a
// frame) or "reserved" (head has moved past the record, the reservation lock
// is still held).
func dieMidFrame() int {
	dir, to := os.Getenv("SHMRING_DIR"), os.Getenv("SHMRING_TO")
	seg, err := ListenCapacity(dir, dyingAddr, 4096)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	tr, err := NewNetwork(dir, seg, nil).Connect(context.Background(), to, to, 1)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	die := func([]byte) {
		_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
		time.Sleep(time.Minute)
	}
	switch os.Getenv("SHMRING_DIE") {
	case "publish":
		testHookPublish = die
	case "reserved":
		testHookReserved = die
	}
	err = tr.Send(context.Background(), frame(1, 1, 0, make([]byte, 3000)))
	fmt.Fprintf(os.Stderr, "the frame went out (%v): the producer was to die in it\n", err)
	return 1
}

// TestProducerKilledMidFrame: a left neighbour killed in the middle of a
// frame leaves a record reserved in the receiver's segment that it will never
// publish; the neighbour that takes its place (a restarted worker: another
// process, another address) and the receiver carry on past it. Before
// records carried their producer's pid the receiver waited on that record
// at every step until its own restart: every attempt of the ring ran into
// the step deadline.
func TestProducerKilledMidFrame(t *testing.T) {
	for _, c := range []struct {
		where string
		// the receiver's Transport of the new generation exists before
		// the producer dies (Recv skips the record) or not (Connect does)
		connectFirst bool
	}{
		{"publish", false},
		{"publish", true},
		{"reserved", false},
		{"reserved", true},
	} {
		t.Run(fmt.Sprintf("%s/connect first %v", c.where, c.connectFirst), func(t *testing.T) {
			a, b, seg := pair(t, 64<<10) // a: the restarted neighbour; b receives on seg
			var rx *Transport
			if c.connectFirst {
				rx = connect(t, b, 1, 2)
			}
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), "SHMRING_DIE="+c.where, "SHMRING_DIR="+seg.Dir(), "SHMRING_TO="+seg.Addr())
			cmd.Stderr = os.Stderr
			err := cmd.Run()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
				t.Fatalf("producer: %v, want it killed by SIGKILL mid-frame", err)
			}
			head, tail := atomic.LoadUint64(seg.head), atomic.LoadUint64(seg.tail)
			if head == tail {
				t.Fatal("the killed producer left no record in the ring")
			}
			if rec, ok := seg.committed(); ok {
				t.Fatalf("the killed producer's record (generation %d) was published", *u64(rec, recGen))
			}
			if !c.connectFirst {
				rx = connect(t, b, 1, 2)
			}
			tx := connect(t, a, 0, 2)
			// Twice the ring's capacity: the new producer needs the room
			// that the receiver gives back.
			const frames, size = 32, 4000
			sent := make(chan error, 1)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			go func() {
				for i := range frames {
					f := frame(2, 3, uint32(i), make([]byte, size))
					f.Data[0] = byte(i)
					if err := tx.Send(ctx, f); err != nil {
						sent <- fmt.Errorf("send %d: %w", i, err)
						return
					}
				}
				sent <- nil
			}()
			for i := range frames {
				f, err := rx.Recv(ctx)
				if err != nil {
					cancel()
					t.Fatalf("receive %d: %v (the ring stays stuck on the killed producer's record)", i, err)
				}
				if f.Generation != 2 || f.Step != 3 || f.Seq != uint32(i) || f.PayloadLen() != size || f.Data[0] != byte(i) {
					t.Fatalf("receive %d: got generation %d step %d seq %d (%d bytes, first %d)", i, f.Generation, f.Step, f.Seq, f.PayloadLen(), f.Data[0])
				}
			}
			if err := <-sent; err != nil {
				t.Fatal(err)
			}
		})
	}
}

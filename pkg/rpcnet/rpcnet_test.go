package rpcnet

import (
	"context"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

func TestInmemServesGRPCAndRefusesClosedAddresses(t *testing.T) {
	n := NewInmem()
	lis, err := n.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := n.Listen(lis.Addr().String()); err == nil {
		t.Fatal("an address in use was given twice")
	}
	srv := grpc.NewServer()
	healthpb.RegisterHealthServer(srv, health.NewServer())
	go func() { _ = srv.Serve(lis) }()
	conn, err := grpc.NewClient(lis.Addr().String(), append(n.DialOptions(), grpc.WithTransportCredentials(insecure.NewCredentials()))...)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{}); err != nil {
		t.Fatalf("health check over the in-memory network: %v", err)
	}
	srv.Stop() // closes the listener: the address refuses connections now
	other, err := grpc.NewClient(lis.Addr().String(), append(n.DialOptions(), grpc.WithTransportCredentials(insecure.NewCredentials()))...)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	sctx, scancel := context.WithTimeout(ctx, time.Second)
	defer scancel()
	if _, err := healthpb.NewHealthClient(other).Check(sctx, &healthpb.HealthCheckRequest{}); err == nil {
		t.Fatal("a closed in-memory address answered")
	}
	if again, err := n.Listen(lis.Addr().String()); err != nil {
		t.Fatalf("a closed address cannot be listened on again: %v", err)
	} else {
		again.Close()
	}
}

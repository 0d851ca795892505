package statetest

import "testing"

func TestStartRedisAnswersAndRestarts(t *testing.T) {
	r := StartRedis(t, Options{AppendOnly: true})
	if got, err := r.Do("SET", "k", "v"); err != nil || got != "+OK" {
		t.Fatalf("SET: %q %v", got, err)
	}
	if got, err := r.Do("DBSIZE"); err != nil || got != ":1" {
		t.Fatalf("DBSIZE: %q %v", got, err)
	}
	r.Kill()
	if _, err := r.Do("PING"); err == nil {
		t.Fatal("PING answered after Kill")
	}
	r.Restart()
	if got, err := r.Do("PING"); err != nil || got != "+PONG" {
		t.Fatalf("PING after restart: %q %v", got, err)
	}
}

func TestPasswordRequired(t *testing.T) {
	r := StartRedis(t, Options{Password: "s3cret"})
	if got, _ := Do(r.Addr, "", "GET", "x"); got[0] != '-' {
		t.Fatalf("unauthenticated GET should fail, got %q", got)
	}
	if got, err := Do(r.Addr, "s3cret", "PING"); err != nil || got != "+PONG" {
		t.Fatalf("authenticated PING: %q %v", got, err)
	}
}

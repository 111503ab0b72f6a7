package aws

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// poller waits for instance states with the SDK's waiters, batching the
// instances that start waiting at about the same time into one waiter:
// 100 nodes created together are polled with one DescribeInstances per
// round instead of 100, which keeps a large unit inside EC2's request
// rate limits and makes N nodes take about as long as one.
type poller struct {
	api      *ec2.Client
	interval time.Duration
	window   time.Duration // how long a batch gathers instances

	mu      sync.Mutex
	pending map[types.InstanceStateName]*batch
}

type batch struct {
	ids  []string
	done chan struct{}
	out  *ec2.DescribeInstancesOutput
	err  error
}

func newPoller(api *ec2.Client, interval time.Duration) *poller {
	return &poller{api: api, interval: interval, window: 100 * time.Millisecond, pending: map[types.InstanceStateName]*batch{}}
}

// maxWait bounds one wait; the caller's context usually ends it first.
const maxWait = 30 * time.Minute

// wait returns the instance once it is in state.
func (p *poller) wait(ctx context.Context, id string, state types.InstanceStateName) (types.Instance, error) {
	p.mu.Lock()
	b := p.pending[state]
	if b == nil {
		b = &batch{done: make(chan struct{})}
		p.pending[state] = b
		go p.run(state, b)
	}
	b.ids = append(b.ids, id)
	p.mu.Unlock()
	select {
	case <-b.done:
	case <-ctx.Done():
		return types.Instance{}, ctx.Err()
	}
	if b.err != nil {
		return types.Instance{}, fmt.Errorf("aws: waiting for %s to be %s: %w", id, state, explain(b.err))
	}
	for _, r := range b.out.Reservations {
		for _, i := range r.Instances {
			if aws.ToString(i.InstanceId) == id {
				return i, nil
			}
		}
	}
	return types.Instance{}, fmt.Errorf("aws: instance %s not found once %s", id, state)
}

func (p *poller) run(state types.InstanceStateName, b *batch) {
	defer close(b.done)
	time.Sleep(p.window)
	p.mu.Lock()
	if p.pending[state] == b {
		delete(p.pending, state)
	}
	in := &ec2.DescribeInstancesInput{InstanceIds: append([]string(nil), b.ids...)}
	p.mu.Unlock()
	ctx := context.Background()
	delays := func(min, max *time.Duration) { *min, *max = p.interval, 4*p.interval }
	switch state {
	case types.InstanceStateNameRunning:
		b.out, b.err = ec2.NewInstanceRunningWaiter(p.api, func(o *ec2.InstanceRunningWaiterOptions) { delays(&o.MinDelay, &o.MaxDelay) }).WaitForOutput(ctx, in, maxWait)
	case types.InstanceStateNameStopped:
		b.out, b.err = ec2.NewInstanceStoppedWaiter(p.api, func(o *ec2.InstanceStoppedWaiterOptions) { delays(&o.MinDelay, &o.MaxDelay) }).WaitForOutput(ctx, in, maxWait)
	case types.InstanceStateNameTerminated:
		b.out, b.err = ec2.NewInstanceTerminatedWaiter(p.api, func(o *ec2.InstanceTerminatedWaiterOptions) { delays(&o.MinDelay, &o.MaxDelay) }).WaitForOutput(ctx, in, maxWait)
	default:
		b.err = fmt.Errorf("cannot wait for state %s", state)
	}
}

package ec2emu

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/xml"
	"io"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
)

// call sends one authenticated Query API request (its form body) to s.
func call(s *Server, body string) *httptest.ResponseRecorder {
	r := httptest.NewRequest("POST", "/", strings.NewReader(body))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
	r.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=kumo-emulator/20260101/us-east-1/ec2/aws4_request, SignedHeaders=host, Signature=0")
	w := httptest.NewRecorder()
	s.ServeHTTP(w, r)
	return w
}

// FuzzRequest sends the emulator any form body, after a key pair, a
// security group and an instance exist: it answers with a 2xx and a
// well-formed XML document, or a 4xx in EC2's error envelope; never a
// 5xx, a panic or a hang; and it still answers DescribeInstances.
func FuzzRequest(f *testing.F) {
	pub, _, _ := ed25519.GenerateKey(rand.Reader)
	sshPub, _ := ssh.NewPublicKey(pub)
	key := string(ssh.MarshalAuthorizedKey(sshPub))
	for _, s := range []string{
		"Action=DescribeRegions&Version=2016-11-15",
		"Action=DescribeImages&Owner.1=self&Filter.1.Name=name&Filter.1.Value.1=debian-12*",
		"Action=DescribeInstanceTypes&InstanceType.1=t3.micro",
		"Action=RunInstances&ImageId=ami-0a1b2c3d4e5f60003&InstanceType=t3.micro&MinCount=1&MaxCount=3&KeyName=k&ClientToken=tok&SecurityGroupId.1=GROUP&TagSpecification.1.ResourceType=instance&TagSpecification.1.Tag.1.Key=kumo%3Arun&TagSpecification.1.Tag.1.Value=r",
		"Action=RunInstances&ImageId=ami-bad&MinCount=1&MaxCount=1",
		"Action=RunInstances&ImageId=ami-0a1b2c3d4e5f60003&MinCount=1&MaxCount=99999999999",
		"Action=RunInstances&ImageId=ami-0a1b2c3d4e5f60003&InstanceType=t3.micro&MinCount=1&MaxCount=1&InstanceMarketOptions.MarketType=spot",
		"Action=DescribeInstances&Filter.1.Name=tag%3Akumo%3Arun&Filter.1.Value.1=r&Filter.2.Name=instance-state-name&Filter.2.Value.1=running",
		"Action=StopInstances&InstanceId.1=INSTANCE",
		"Action=StartInstances&InstanceId.1=INSTANCE",
		"Action=TerminateInstances&InstanceId.1=INSTANCE&InstanceId.2=i-0000",
		"Action=ImportKeyPair&KeyName=k2&PublicKeyMaterial=" + url.QueryEscape(base64.StdEncoding.EncodeToString([]byte(key))),
		"Action=DescribeKeyPairs&KeyName.1=k",
		"Action=DeleteKeyPair&KeyName=k",
		"Action=CreateSecurityGroup&GroupName=g2&GroupDescription=d",
		"Action=AuthorizeSecurityGroupIngress&GroupId=GROUP&IpPermissions.1.IpProtocol=tcp&IpPermissions.1.FromPort=22&IpPermissions.1.ToPort=22&IpPermissions.1.IpRanges.1.CidrIp=0.0.0.0%2F0",
		"Action=DescribeSecurityGroups&GroupId.1=GROUP",
		"Action=DeleteSecurityGroup&GroupId=GROUP",
		"Action=Nope",
		"%zz",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		s := New(Options{APIOnly: true, InstanceLimit: 20})
		setup := []string{
			"Action=ImportKeyPair&KeyName=k&PublicKeyMaterial=" + url.QueryEscape(base64.StdEncoding.EncodeToString([]byte(key))),
			"Action=CreateSecurityGroup&GroupName=g&GroupDescription=d",
		}
		group := ""
		for _, req := range setup {
			w := call(s, req)
			if w.Code != 200 {
				t.Fatalf("setup %s: %d %s", req, w.Code, w.Body)
			}
			if strings.Contains(req, "CreateSecurityGroup") {
				var out struct {
					ID string `xml:"groupId"`
				}
				xml.Unmarshal(w.Body.Bytes(), &out)
				group = out.ID
			}
		}
		w := call(s, "Action=RunInstances&ImageId=ami-0a1b2c3d4e5f60003&InstanceType=t3.micro&MinCount=1&MaxCount=1&KeyName=k")
		var res struct {
			ID string `xml:"instancesSet>item>instanceId"`
		}
		if err := xml.Unmarshal(w.Body.Bytes(), &res); err != nil || res.ID == "" {
			t.Fatalf("setup RunInstances: %d %s", w.Code, w.Body)
		}
		body = strings.ReplaceAll(strings.ReplaceAll(body, "GROUP", group), "INSTANCE", res.ID)

		w = call(s, body)
		checkAnswer(t, body, w)
		w = call(s, "Action=DescribeInstances")
		if w.Code != 200 {
			t.Fatalf("after %q DescribeInstances answers %d: %s", body, w.Code, w.Body)
		}
		checkAnswer(t, "DescribeInstances", w)
	})
}

func checkAnswer(t *testing.T, req string, w *httptest.ResponseRecorder) {
	t.Helper()
	if w.Code >= 500 || w.Code < 200 || w.Code >= 300 && w.Code < 400 {
		t.Fatalf("%q: status %d: %s", req, w.Code, w.Body)
	}
	dec := xml.NewDecoder(strings.NewReader(w.Body.String()))
	for {
		_, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("%q: the answer is not well-formed XML (%v): %s", req, err, w.Body)
		}
	}
	if w.Code >= 400 && !strings.Contains(w.Body.String(), "<Errors><Error><Code>") {
		t.Fatalf("%q: an error without EC2's envelope: %s", req, w.Body)
	}
}

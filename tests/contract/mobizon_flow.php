<?php
// A complete Mobizon flow through the official client (mobizon-php, MIT), run by test_mobizon_php.py.
// Usage: php mobizon_flow.php <path to mobizon-php/src> <sandbox host:port> <json|xml> <api key>
// The client is used unchanged; the subclass only routes its connection to the sandbox (as an
// /etc/hosts line would): the client accepts no port in apiServer and builds https/http URLs itself.
// Prints one JSON object: per step the call's result (true for codes 0 and 100), code and data.

list(, $src, $hostPort, $format, $apiKey) = $argv;
require $src . '/MobizonApi.php';

class SandboxRoutedApi extends Mobizon\MobizonApi
{
    public function routeTo($hostPort)
    {
        curl_setopt($this->curl, CURLOPT_CONNECT_TO, array('api.sandbox.test:80:' . $hostPort));
    }
}

// JSON answers decode to stdClass/arrays, XML ones to SimpleXMLElement: both become plain arrays
// of strings so the test can compare the two modes with each other.
function plain($value)
{
    if ($value instanceof SimpleXMLElement) {
        if (count($value->children()) === 0) {
            return (string)$value;
        }
        $out = array();
        foreach ($value->children() as $name => $child) {
            if ($name === 'item') {
                $key = (string)$child['key'];
                if ($key !== '') {
                    $out[$key] = plain($child);
                } else {
                    $out[] = plain($child);
                }
            } else {
                $out[$name] = plain($child);
            }
        }
        return $out;
    }
    if (is_object($value) || is_array($value)) {
        $out = array();
        if (count((array)$value) === 0) {
            return '';  // an empty list is an empty element in XML
        }
        foreach ($value as $key => $item) {
            $out[$key] = plain($item);
        }
        return $out;
    }
    if ($value === null) {
        return '';
    }
    if (is_bool($value)) {
        return $value ? '1' : '0';
    }
    return (string)$value;
}

$api = new SandboxRoutedApi($apiKey, 'api.sandbox.test', array('format' => $format, 'forceHTTP' => true));
$api->routeTo($hostPort);
$steps = array();

function step($name, $api, $module, $method, $post = array())
{
    global $steps;
    $ok = $api->call($module, $method, $post);
    $steps[$name] = array('ok' => $ok, 'code' => (int)(string)$api->getCode(), 'data' => plain($api->getData()));
    return $steps[$name]['data'];
}

step('balance', $api, 'User', 'GetOwnBalance');
$steps['balance']['currency'] = plain($api->getData('currency'));
$id = step('create', $api, 'Campaign', 'Create', array('data' => array('type' => 2, 'text' => 'Hello from PHP', 'from' => 'Shop')));
step('add', $api, 'Campaign', 'AddRecipients', array('id' => $id, 'recipients' => array('77011234567', '77011234568')));
step('add_partial', $api, 'Campaign', 'AddRecipients', array('id' => $id, 'recipients' => array('77011230000', '77011234569')));
step('send', $api, 'Campaign', 'Send', array('id' => $id));
step('get', $api, 'Campaign', 'Get', array('id' => $id));
step('info', $api, 'Campaign', 'GetInfo', array('id' => $id));
$ids = array();
foreach (array('add', 'add_partial') as $name) {
    foreach ($steps[$name]['data'] as $row) {
        if ($row['messageId'] !== '') {
            $ids[] = $row['messageId'];
        }
    }
}
step('status', $api, 'Message', 'GetSMSStatus', array('ids' => $ids));
step('messages', $api, 'Message', 'List', array('criteria' => array('campaignIds' => array($id)), 'pagination' => array('pageSize' => 25, 'currentPage' => 0)));
step('campaigns', $api, 'Campaign', 'List', array('criteria' => array('ids' => array($id))));
step('single', $api, 'Message', 'SendSmsMessage', array('recipient' => '77011234570', 'text' => 'One message'));
$group = step('create_group', $api, 'Campaign', 'Create', array('data' => array('text' => 'Group news')));
$task = step('add_group', $api, 'Campaign', 'AddRecipients', array('id' => $group, 'recipientGroups' => '1'));
step('task', $api, 'TaskQueue', 'GetStatus', array('id' => $task));
$spare = step('create_spare', $api, 'Campaign', 'Create', array('data' => array('text' => 'Never sent')));
step('delete', $api, 'Campaign', 'Delete', array('id' => $spare));
step('missing', $api, 'Campaign', 'Get', array('id' => 999999));
echo json_encode($steps), "\n";
